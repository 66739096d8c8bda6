# Require-approval rules beside plain allows.
package warden

require_approval if input.action == "deploy"

require_approval if {
	input.action == "tool_call"
	input.tool == "shell"
}

allow if input.action == "tool_call"

require_approval if {
	input.action == "delete_file"
	input.context.env == "prod"
}

# YAML and Cedar fail closed when `context.env` is missing (the restricting rule cannot be
# evaluated); Rego has no such error, so the policy says it.
deny if {
	input.action == "delete_file"
	not input.context.env
}

allow if input.action == "delete_file"

reason := "deploys need a human" if input.action == "deploy"
