"""A real MCP server (the official Python SDK's FastMCP over stdio) with a `write_file` tool.

usage: sdk_server.py
Its stdio transport reads stdin through `TextIOWrapper` with universal newlines, so a lone
`\r` ends a line there, as `\n` does.
"""
from mcp.server.fastmcp import FastMCP

mcp = FastMCP("python-sdk-writer")


@mcp.tool()
def write_file(path: str, content: str) -> str:
    """Write a file."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(content)
    return "wrote " + path


mcp.run()
