-- fib(27), timed like examples/interp_bench.rs times fib.kp (CPU seconds on stderr).
local t0 = os.clock()
function fib(n)
	if n < 2 then
		return n
	end
	return fib(n - 1) + fib(n - 2)
end
print(fib(27))
io.stderr:write(string.format("time: %.4f\n", os.clock() - t0))
