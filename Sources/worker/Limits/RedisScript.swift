/// The check, atomic in Redis (docs/rate-limits.md "Across hosts"), for a batch of checks
/// (`RedisCheckBatch`: its command and reply). Each key is a list of admission instants, newest
/// first (µs from Redis's own `TIME`, so host clocks do not matter; one `TIME` per batch: its
/// checks are made at one instant, one after another).
///
/// A check is admitted when each of its keys' `limit`-th newest admission is older than the
/// window (or there are fewer than `limit`): exactly the sliding window of docs/rate-limits.md.
/// It is then recorded in each of its keys. The batch's admissions are counted here and pushed at
/// the end, so a check costs Redis no command of its own unless its key holds `limit` entries
/// (`LINDEX`, which answers at once when the list is shorter). Entries that no longer matter —
/// out of the window, or beyond the `limit` newest — are not removed one by one: each time a
/// key's length passes a multiple of `min(limit, 1024)` they are found from the old end (`LINDEX`
/// at growing, then halving, distances) and cut off in one `LTRIM`. So a key holds at most its
/// window's admissions (or `limit`) plus that step, and an idle key expires whole a minute after
/// its last admission (`PEXPIRE`). A batch of one check gets its integer alone (an array reply
/// cost Redis ~5,000 instructions more per check).
enum RedisScript {
    static let bytes = Array(source.utf8)
    static let source = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        local stamp = t[1] .. string.sub(t[2] + 1000000, 2)
        local window = tonumber(ARGV[1])
        local oldest = now - window
        local keys = #KEYS
        local length, limit, pushed = {}, {}, {}
        for i = 1, keys do
          length[i] = redis.call('LLEN', KEYS[i])
          limit[i] = tonumber(ARGV[i + 1])
          pushed[i] = 0
        end
        local out = {}
        for j = keys + 2, #ARGV do
          local code = tonumber(ARGV[j])
          local a = code % 256
          local b = (code - a) / 256
          local r = 0
          local i = a
          while i > 0 do
            local n, p, l = length[i], pushed[i], limit[i]
            local v
            if p >= l then
              v = now
            elseif n + p >= l then
              local at = l - 1 - p
              if at + at >= n then at = at - n end
              v = tonumber(redis.call('LINDEX', KEYS[i], at))
            end
            if v and v > oldest then
              r = (v - oldest) * 2 + (i == a and 0 or 1)
              break
            end
            if i == b then break end
            i = b
          end
          if r == 0 then
            pushed[a] = pushed[a] + 1
            if b > 0 then pushed[b] = pushed[b] + 1 end
          end
          out[j - keys - 1] = r
        end
        for i = 1, keys do
          local p = pushed[i]
          if p > 0 then
            local key, l = KEYS[i], limit[i]
            local n = length[i] + p
            if p == 1 then
              redis.call('LPUSH', key, stamp)
            else
              local stamps = {}
              for x = 1, p do stamps[x] = stamp end
              redis.call('LPUSH', key, unpack(stamps))
            end
            local step = math.min(l, 1024)
            if math.floor(n / step) > math.floor((n - p) / step) then
              local low, high = 0, 1
              local function old(k)
                local v = redis.call('LINDEX', key, -k)
                return v and tonumber(v) <= oldest
              end
              while high <= n and old(high) do low, high = high, high * 2 end
              if high > n then high = n + 1 end
              while high - low > 1 do
                local mid = math.floor((low + high) / 2)
                if old(mid) then low = mid else high = mid end
              end
              local keep = math.min(l, n - low)
              if keep < n then redis.call('LTRIM', key, 0, keep - 1) end
            end
            redis.call('PEXPIRE', key, math.floor(window / 1000) + 1000)
          end
        end
        if #out == 1 then return out[1] end
        return out
        """
}
