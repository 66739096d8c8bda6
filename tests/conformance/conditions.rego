# Conditions: CEL `when` in YAML, `when {}` in Cedar, rule bodies in Rego.
package warden

allow if {
	input.action == "payment"
	is_number(input.args.amount)
	input.args.amount <= 1000
}

deny if {
	input.action == "payment"
	input.args.to == "sanctioned-co"
}

allow if {
	input.action == "run_shell"
	input.context.env == "dev"
}
