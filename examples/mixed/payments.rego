# Rego: payments above 100 need a person; small ones are fine.
package warden

require_approval if {
	input.action == "payments.transfer"
	input.args.amount > 100
}

allow if {
	input.action == "payments.transfer"
	input.args.amount <= 100
}

reason := "transfers over 100 need a person to approve" if {
	input.action == "payments.transfer"
	input.args.amount > 100
}
