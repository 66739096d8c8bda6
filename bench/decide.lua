-- wrk script: POST the two benchmark actions (bench/actions.jsonl) in turn to /v1/decide,
-- over keep-alive connections.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {
  '{"agent":"bench","action":"http_request","args":{"url":"https://api.github.com/repos/rust-lang/rust","method":"GET"}}',
  '{"agent":"bench","action":"execute_code","args":{"code":"print(1)"}}',
}
local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, nil, nil, bodies[i % 2 + 1])
end
