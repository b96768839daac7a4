-- wrk script for bench/est. The mode comes from the environment (never argv):
--
--   EST_WRK_MODE=close   the request as given on the command line, with "Connection: close",
--                        so that wrk opens a new connection for every request
--   EST_WRK_MODE=enroll  POST EST_WRK_CSR (a base64 PKCS#10 file) as application/pkcs10 with
--                        "Authorization: Basic <the line in EST_WRK_AUTH_FILE>"
--
-- In the enroll mode every answer's status is counted and printed at the end as
-- "status NNN: COUNT" lines, so the bench can check what the server really answered.

local mode = os.getenv("EST_WRK_MODE") or ""

local function slurp(path, what)
	local f = path and io.open(path, "rb")
	if not f then
		error("est-wrk.lua: cannot read " .. what .. " (" .. tostring(path) .. ")")
	end
	local s = f:read("*a")
	f:close()
	return s
end

if mode == "close" then
	wrk.headers["Connection"] = "close"
elseif mode == "enroll" then
	local token = slurp(os.getenv("EST_WRK_AUTH_FILE"), "EST_WRK_AUTH_FILE"):gsub("%s+", "")
	wrk.method = "POST"
	wrk.headers["Authorization"] = "Basic " .. token
	wrk.body = slurp(os.getenv("EST_WRK_CSR"), "EST_WRK_CSR")
	wrk.headers["Content-Type"] = "application/pkcs10"
else
	error("est-wrk.lua: EST_WRK_MODE must be close or enroll, not '" .. mode .. "'")
end

if mode ~= "close" then
	local threads = {}

	function setup(thread)
		table.insert(threads, thread)
	end

	-- Per thread (each wrk thread has its own Lua state): a string "code=count,..." is
	-- what thread:get can copy back to the main state at the end.
	local counts = {}

	function response(status, headers, body)
		counts[status] = (counts[status] or 0) + 1
		local parts = {}
		for code, n in pairs(counts) do
			table.insert(parts, code .. "=" .. n)
		end
		status_counts = table.concat(parts, ",")
	end

	function done(summary, latency, requests)
		local total = {}
		for _, t in ipairs(threads) do
			local s = t:get("status_counts") or ""
			for code, n in s:gmatch("(%d+)=(%d+)") do
				total[code] = (total[code] or 0) + tonumber(n)
			end
		end
		for code, n in pairs(total) do
			io.write(string.format("status %s: %d\n", code, n))
		end
	end
end
