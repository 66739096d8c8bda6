"""A real MCP client (the official Python SDK, Streamable HTTP) talking to server-everything
through `warden mcp proxy --upstream … --listen …`, exercising what flows server → client in
the middle of a call: a sampling request, an elicitation request and progress notifications.

usage: sdk_http_client.py URL
Prints one JSON line with what it saw.
"""
import asyncio
import json
import sys

from mcp import ClientSession, types
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.exceptions import McpError


async def sampling(context, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    asked = params.messages[0].content.text
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text=f"sampled through warden: {asked}"),
        model="test-model",
        stopReason="endTurn",
    )


async def elicitation(context, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"name": "Ada Warden"})


async def main() -> None:
    url = sys.argv[1]
    progress = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append(p)

    async with streamablehttp_client(url) as (read, write, get_session_id):
        async with ClientSession(read, write, sampling_callback=sampling, elicitation_callback=elicitation) as session:
            await session.initialize()
            tools = [t.name for t in (await session.list_tools()).tools]
            echo = await session.call_tool("echo", {"message": "hello http"})
            sampled = await session.call_tool("trigger-sampling-request", {"prompt": "ping", "maxTokens": 5})
            elicited = await session.call_tool("trigger-elicitation-request", {})
            long = await session.call_tool(
                "trigger-long-running-operation", {"duration": 0.3, "steps": 3}, progress_callback=on_progress
            )
            try:
                await session.call_tool("get-env", {})
                env_error = ""
            except McpError as e:
                env_error = e.error.message
            session_id = get_session_id()
    print(
        json.dumps(
            {
                "tools": tools,
                "session": session_id,
                "echo": echo.content[0].text,
                "sampled": " ".join(c.text for c in sampled.content if c.type == "text"),
                "elicited": " ".join(c.text for c in elicited.content if c.type == "text"),
                "long": long.content[0].text,
                "progress": progress,
                "get_env_error": env_error,
            }
        )
    )


asyncio.run(main())
