-- wrk script: POST /oauth/token, each request redeeming the next pre-issued code from codes.txt.
-- Each wrk thread takes every n-th code, so no code is used twice.
local codes = {}
for line in io.lines(os.getenv("CODES_FILE")) do codes[#codes + 1] = line end
local counter = 0
local threads = {}

function setup(thread)
    thread:set("offset", #threads)
    table.insert(threads, thread)
end

function init(args)
    step = tonumber(os.getenv("WRK_THREADS") or "2")
end

function request()
    local index = (counter * step) + offset + 1
    counter = counter + 1
    local code = codes[index] or "exhausted"
    local body = "grant_type=authorization_code&client_id=demo-app&client_secret=demo-secret" ..
        "&redirect_uri=" .. os.getenv("REDIRECT_URI") .. "&code=" .. code
    return wrk.format("POST", "/oauth/token", {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
