-- 10 million iterations with table updates; mirrors loop.kp (whose
-- top-level vars are globals, so these are too).
local t0 = os.clock()
t = {}
sum = 0
for i = 1, 10000000 do
	local k = i % 1000
	t[k] = (t[k] or 0) + i
	sum = sum + i
end
local n = 0
for _ in pairs(t) do n = n + 1 end
print(n, t[0], t[999], sum)
io.stderr:write(string.format("time: %.4f\n", os.clock() - t0))
