# Agent-scoped rules: only some agents may deploy; one agent may not read.
package warden

allow if {
	input.action == "deploy"
	input.agent in {"ops-bot", "ci-bot", "björn"}
}

allow if input.action == "read_file"

deny if {
	input.action == "read_file"
	input.agent == "mallory"
}
