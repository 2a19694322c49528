-- wrk script: GET /authorize as a logged-in, consented user (the URL and Cookie header come from the
-- command line) and keep the code of every redirect, for token.lua to redeem later. Each wrk thread
-- writes its own file, CODES_FILE.<thread number>, one code a line, in the order they were issued, and
-- stops after CODES_PER_THREAD codes (wrk itself still waits for its -d duration).
local threads = {}

function setup(thread)
    thread:set("id", #threads)
    table.insert(threads, thread)
end

function init(args)
    out = io.open(os.getenv("CODES_FILE") .. "." .. id, "w")
    out:setvbuf("line")
    limit = tonumber(os.getenv("CODES_PER_THREAD") or "0")
    kept = 0
end

function response(status, headers, body)
    local location = headers["Location"] or headers["location"]
    local code = location and location:match("[?&]code=([^&]+)")
    if code and (limit == 0 or kept < limit) then
        out:write(code, "\n")
        kept = kept + 1
        if kept == limit then wrk.thread:stop() end
    end
end
