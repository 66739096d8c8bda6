"""A real MCP client (the official Python SDK) talking to a server through `warden mcp proxy`.

usage: sdk_client.py WARDEN POLICY SERVER_CMD...
Prints one JSON line: the tools it saw, the echo result, and the error for get-env.
"""
import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import McpError


async def main() -> None:
    warden, policy, *server = sys.argv[1:]
    params = StdioServerParameters(command=warden, args=["mcp", "proxy", "--policy", policy, "--", *server])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = [t.name for t in (await session.list_tools()).tools]
            echo = await session.call_tool("echo", {"message": "hello sdk"})
            try:
                await session.call_tool("get-env", {})
                env_error = ""
            except McpError as e:
                env_error = e.error.message
    print(json.dumps({"tools": tools, "echo": echo.content[0].text, "get_env_error": env_error}))


asyncio.run(main())
