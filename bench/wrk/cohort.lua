-- wrk script: POST the patient-view bodies of a JSON-lines file (one request body a line), in turn.
-- Usage: wrk -t1 -c8 -d10s --latency -s bench/wrk/cohort.lua http://127.0.0.1:PORT/cds-services/hcc-tace-resistance -- BODIES.jsonl [FIRST]
-- A body holding "@@" is a template (bench.common.fresh_versions(body, "@@")): each request replaces every "@@" with
-- a number of its own, counted from FIRST (default 0), so that every call is a patient never seen (cold): new ids,
-- references and versions. Give each run its own FIRST.
local bodies = {}
local next_body = 0
local serial = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  local path = args[1]
  if path == nil then
    error("cohort.lua needs the bodies file: ... -- BODIES.jsonl")
  end
  serial = tonumber(args[2] or "0")
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
  serial = serial + 1
  local body = string.gsub(bodies[next_body], "@@", tostring(serial))
  return wrk.format("POST", wrk.path, headers, body)
end
