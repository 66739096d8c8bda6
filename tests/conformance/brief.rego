# The product brief's policy in Rego. Rego has no WHATWG URL parser, so the host check is a
# prefix match on `args.url` (or an exact `args.host` when there is no URL).
package warden

deny if input.action == "execute_code"

allow if {
	input.action == "http_request"
	github
	input.args.method == "GET"
}

github if startswith(input.args.url, "https://api.github.com/")

github if startswith(input.args.url, "http://api.github.com/")

github if {
	not input.args.url
	input.args.host == "api.github.com"
}
