-- wrk script: POST the patient-view bodies of a JSON-lines file (one request body a line), in turn.
-- Usage: wrk -t1 -c8 -d10s --latency -s bench/wrk/cohort.lua http://127.0.0.1:PORT/cds-services/hcc-tace-resistance -- BODIES.jsonl
local bodies = {}
local next_body = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  local path = args[1]
  if path == nil then
    error("cohort.lua needs the bodies file: ... -- BODIES.jsonl")
  end
  for line in io.lines(path) do
    if #line > 0 then
      bodies[#bodies + 1] = line
    end
  end
  if #bodies == 0 then
    error("no request bodies in " .. path)
  end
  -- each wrk thread starts at its own place in the cycle
  next_body = math.random(#bodies) - 1
end

function request()
  next_body = next_body % #bodies + 1
  return wrk.format("POST", wrk.path, headers, bodies[next_body])
end
