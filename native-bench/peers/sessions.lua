-- wrk script for the http-affinity workload of `npm run bench`:
--   wrk -t1 -c50 -d3s --latency -s sessions.lua URL -- IDS_FILE
-- Every request carries `x-session: ID`, ID drawn at random (uniform) from the ids in
-- IDS_FILE (one a line, written by run.mjs), so each keep-alive connection carries
-- requests of many sessions, as behind a shared client-side proxy. The requests are
-- formatted once in init(): per request wrk only picks one. Headers given with -H
-- (`-H 'Connection: close'`: a new connection per request) go into every request:
-- wrk.format() does not add wrk.headers to a table of its own.
local requests = {}

function init(args)
  local file = assert(io.open(args[1], "r"), "sessions.lua: cannot read the session id file")
  for id in file:lines() do
    if id ~= "" then
      local headers = { ["Host"] = "bench", ["x-session"] = id }
      for name, value in pairs(wrk.headers) do
        if name ~= "Host" then headers[name] = value end
      end
      requests[#requests + 1] = wrk.format("GET", "/", headers)
    end
  end
  file:close()
  assert(#requests > 0, "sessions.lua: no session ids")
  math.randomseed(os.time())
end

function request()
  return requests[math.random(#requests)]
end
