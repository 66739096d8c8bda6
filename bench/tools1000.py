"""Write a saved `tools/list` result of 1,000 real tools (the benign captures of real MCP
servers in bench/detect/data/tools/servers-h*.jsonl, in file order, names made unique) for
timing `warden mcp scan --model` on 1,000 tools (docs/model.md).

Run: python3 bench/tools1000.py /tmp/tools-1000.json
"""
import glob
import json
import sys

tools, seen = [], set()
for path in sorted(glob.glob("bench/detect/data/tools/servers-h*.jsonl")):
    for line in open(path, encoding="utf-8"):
        tool = json.loads(line)["tool"]
        name = tool.get("name", "tool")
        while name in seen:
            name += "_"
        seen.add(name)
        tools.append(dict(tool, name=name))
if len(tools) < 1000:
    sys.exit(f"only {len(tools)} tools in bench/detect/data/tools/servers-h*.jsonl")
with open(sys.argv[1], "w", encoding="utf-8") as out:
    json.dump({"tools": tools[:1000]}, out)
print(f"wrote 1000 tools to {sys.argv[1]}")
