# Rego: payments above 100 need a person; small ones are fine.
#
# Rego orders values of different types (null < booleans < numbers < strings < …), so
# `input.args.amount <= 100` is true for `null`, `false` and `true`, and `> 100` is true for
# any string. Check the type first: anything that is not a number is neither small nor big,
# so no rule applies and the request is denied.
package warden

amount := input.args.amount if is_number(input.args.amount)

require_approval if {
	input.action == "payments.transfer"
	amount > 100
}

allow if {
	input.action == "payments.transfer"
	amount <= 100
}

reason := "transfers over 100 need a person to approve" if {
	input.action == "payments.transfer"
	amount > 100
}
