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
/// its last admission (`PEXPIRE`, by the command's expiry in ms). A batch of one check gets its
/// integer alone (an array reply cost Redis ~5,000 instructions more per check).
///
/// A batch of one check (every batch at low concurrency) is pushed first: `LPUSH` answers the
/// key's length, so no `LLEN`; the limit-th newest admission before it (index `limit` after the
/// push) is read only when the list is longer than the limit, and a refused check's entries are
/// taken back (`LPOP`: the script is atomic, so they are the ones just pushed). Most such checks
/// are `TIME`, `LPUSH` and `PEXPIRE` (redis-server: 67,359 → 44,566 instructions per lone check,
/// docs/performance.md "redis3 (session 13)").
///
/// Strings stay strings where they can: Lua turns a string into a number with `strtod` and a
/// number into a string with `sprintf` (~1,000 and ~2,200 instructions each). So the instant is
/// made a number only when a key is at its limit (the usual check never needs it), the stamp is
/// `TIME`'s two strings joined, and the expiry comes as the client wrote it.
enum RedisScript {
    static let bytes = Array(source.utf8)
    static let source = """
        local t = redis.call('TIME')
        local stamp = t[1] .. string.rep('0', 6 - #t[2]) .. t[2]
        local now, oldest
        local keys = #KEYS
        local length, limit, pushed, out
        local alone = #ARGV == keys + 3
        if alone then
          local code = tonumber(ARGV[keys + 3])
          local a = code % 256
          local b = (code - a) / 256
          local la = tonumber(ARGV[a + 2])
          local na = redis.call('LPUSH', KEYS[a], stamp)
          local lb, nb
          if b > 0 then
            lb = tonumber(ARGV[b + 2])
            nb = redis.call('LPUSH', KEYS[b], stamp)
          end
          local r = 0
          local i, n, l = a, na, la
          while true do
            if n > l then
              if not now then
                now = tonumber(t[1]) * 1000000 + tonumber(t[2])
                oldest = now - tonumber(ARGV[1])
              end
              local at = l
              if at + at >= n then at = at - n end
              local v = tonumber(redis.call('LINDEX', KEYS[i], at))
              if v > oldest then
                r = (v - oldest) * 2 + (i == a and 0 or 1)
                break
              end
            end
            if b == 0 or i == b then break end
            i, n, l = b, nb, lb
          end
          if r > 0 then
            redis.call('LPOP', KEYS[a])
            if b > 0 then redis.call('LPOP', KEYS[b]) end
            return r
          end
          if na % math.min(la, 1024) ~= 0 and (b == 0 or nb % math.min(lb, 1024) ~= 0) then
            redis.call('PEXPIRE', KEYS[a], ARGV[2])
            if b > 0 then redis.call('PEXPIRE', KEYS[b], ARGV[2]) end
            return 0
          end
          length, limit, pushed, out = {[a] = na - 1}, {[a] = la}, {[a] = 1}, {0}
          if b > 0 then length[b], limit[b], pushed[b] = nb - 1, lb, 1 end
        else
          length, limit, pushed, out = {}, {}, {}, {}
          for i = 1, keys do
            length[i] = redis.call('LLEN', KEYS[i])
            limit[i] = tonumber(ARGV[i + 2])
            pushed[i] = 0
          end
          for j = keys + 3, #ARGV do
            local code = tonumber(ARGV[j])
            local a = code % 256
            local b = (code - a) / 256
            local r = 0
            local i = a
            while i > 0 do
              local n, p, l = length[i], pushed[i], limit[i]
              local v
              if n + p >= l then
                if not now then
                  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
                  oldest = now - tonumber(ARGV[1])
                end
                if p >= l then
                  v = now
                else
                  local at = l - 1 - p
                  if at + at >= n then at = at - n end
                  v = tonumber(redis.call('LINDEX', KEYS[i], at))
                end
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
            out[j - keys - 2] = r
          end
        end
        for i = 1, keys do
          local p = pushed[i] or 0
          if p > 0 then
            local key, l = KEYS[i], limit[i]
            local n = length[i] + p
            if alone then
            elseif p == 1 then
              redis.call('LPUSH', key, stamp)
            else
              local stamps = {}
              for x = 1, p do stamps[x] = stamp end
              redis.call('LPUSH', key, unpack(stamps))
            end
            local step = math.min(l, 1024)
            if math.floor(n / step) > math.floor((n - p) / step) then
              if not now then
                now = tonumber(t[1]) * 1000000 + tonumber(t[2])
                oldest = now - tonumber(ARGV[1])
              end
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
            redis.call('PEXPIRE', key, ARGV[2])
          end
        end
        if #out == 1 then return out[1] end
        return out
        """
}
