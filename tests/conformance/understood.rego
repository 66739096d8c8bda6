# The parsed reading (issue 17): commands, paths, SQL kinds and intent labels, the same rules in
# YAML fields, Cedar's `context.understood` and Rego's `input.understood`.
package warden

harmful := {"destructive", "remote_code", "credential_access"}

deny if {
	some label in input.understood.intents
	label in harmful
}

deny if "/etc/shadow" in input.understood.paths

allow if {
	input.action == "shell.exec"
	count(input.understood.commands) > 0
	every c in input.understood.commands {
		c in {"git", "ls", "cat"}
	}
}

allow if {
	input.action == "db.query"
	count(input.understood.sql) > 0
	every k in input.understood.sql {
		k == "select"
	}
}

allow if input.action == "file.read"
