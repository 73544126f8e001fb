//! Every program the compiler accepts must pass the kernel verifier. This
//! generates a few hundred random probe bodies from the kernel-side
//! language (deterministic seed), compiles each (without root, against the
//! fake kernel) and loads it with `ktap -d` (needs root; says so when
//! skipped). A compile error is a generator bug or a compiler bug; a load
//! failure is a compiler bug. Bodies include statements after `break`,
//! after an `if` whose branches all leave, and after `exit()` (dropped
//! with a warning), loops whose body always leaves, and calls of functions
//! that end the probe from inside an expression.

mod support;

struct Gen {
    rng: support::Rng,
    locals: Vec<String>,
    /// String-typed locals in scope.
    strings: Vec<String>,
    depth: u32,
    /// Loops around the statement being generated.
    loops: u32,
}

impl Gen {
    fn pick(&mut self, n: usize) -> usize {
        self.rng.below(n)
    }

    fn expr(&mut self, fields: bool) -> String {
        self.depth += 1;
        let leaf = self.depth > 3;
        let choice = if leaf { self.pick(7) } else { self.pick(15) };
        let e = match choice {
            0 => format!("{}", self.pick(1000) as i64 - 10),
            1 => "pid".into(),
            2 => "tid".into(),
            3 => "cpu".into(),
            4 => "g0".into(),
            5 if fields => format!("arg{}", 1 + self.pick(3)),
            5 | 6 => match self.locals.len() {
                0 => "uid".into(),
                n => {
                    let i = self.pick(n);
                    self.locals[i].clone()
                }
            },
            7 => format!("({} + {})", self.expr(fields), self.expr(fields)),
            8 => format!("({} - {})", self.expr(fields), self.expr(fields)),
            9 => format!("({} * {})", self.expr(fields), self.expr(fields)),
            10 => format!("({} / {})", self.expr(fields), self.expr(fields)),
            11 if self.pick(3) == 0 => format!("h({})", self.expr(fields)),
            11 => format!("f({}, {})", self.expr(fields), self.expr(fields)),
            12 => format!("t_int[{}]", self.expr(fields)),
            13 => "in_interrupt()".into(),
            _ => "gettimeofday_ms()".into(),
        };
        self.depth -= 1;
        e
    }

    /// A string value: the task name, a literal (short or long), a string
    /// local, the string global, a string-valued table element, or a
    /// string read from user memory.
    fn string(&mut self, fields: bool) -> String {
        match self.pick(10) {
            // Numbers as decimal text.
            8 => format!("tostring({})", self.expr(fields)),
            9 if self.depth < 2 => {
                self.depth += 1;
                let joined = format!("({} .. {})", self.string(fields), self.expr(fields));
                self.depth -= 1;
                joined
            }
            0 => "execname".into(),
            1 => "\"bash\"".into(),
            2 => "\"a literal longer than sixteen bytes\"".into(),
            3 => "g_s".into(),
            4 => format!("t_sv[{}]", self.expr(fields)),
            5 if self.depth < 2 => {
                self.depth += 1;
                let inner = self.string(fields);
                let joined = if self.pick(2) == 0 { format!("pick({inner})") } else { format!("({inner} .. \"-\" .. {})", self.string(fields)) };
                self.depth -= 1;
                joined
            }
            6 if fields => "user_string(arg2)".into(),
            _ => match self.strings.len() {
                0 => "execname".into(),
                n => {
                    let i = self.pick(n);
                    self.strings[i].clone()
                }
            },
        }
    }

    fn cond(&mut self, fields: bool) -> String {
        if self.pick(5) == 0 {
            // (Against execname the long literal can never match: a
            // warning, and a constant.)
            let op = if self.pick(2) == 0 { "==" } else { "!=" };
            return format!("{} {op} {}", self.string(fields), self.string(fields));
        }
        match self.pick(6) {
            0 => format!("{} == {}", self.expr(fields), self.expr(fields)),
            1 => format!("{} < {}", self.expr(fields), self.expr(fields)),
            2 => format!("({}) && ({})", self.cond(fields), self.cond(fields)),
            3 => format!("!({})", self.cond(fields)),
            4 => match self.nilable() {
                Some(n) if self.pick(2) == 0 => format!("{n} {} nil", if self.pick(2) == 0 { "==" } else { "!=" }),
                _ => format!("t_int[{}] == nil", self.expr(fields)),
            },
            _ => "execname == \"bash\"".into(),
        }
    }

    fn stmt(&mut self, fields: bool, depth: u32, out: &mut String) {
        let pad = "    ".repeat(depth as usize + 1);
        let choice = match (depth >= 2, self.pick(3)) {
            (true, _) => self.pick(7),
            // A third of the statements work on strings.
            (false, 0) => 10 + self.pick(5),
            // Some leave, with or without code after them.
            (false, 1) if self.pick(3) == 0 => 15 + self.pick(7),
            (false, _) => self.pick(10),
        };
        match choice {
            0 => out.push_str(&format!("{pad}g0 += {}\n", self.expr(fields))),
            1 => out.push_str(&format!("{pad}t_int[{}] += {}\n", self.expr(fields), self.expr(fields))),
            2 => out.push_str(&format!("{pad}t_comm[execname] += 1\n")),
            3 => {
                let name = format!("l{}", self.locals.len());
                out.push_str(&format!("{pad}var {name} = {}\n", self.expr(fields)));
                self.locals.push(name);
            }
            4 => out.push_str(&format!("{pad}printf(\"%d %s %d\\n\", {}, execname, {})\n", self.expr(fields), self.expr(fields))),
            5 => out.push_str(&format!("{pad}print({}, probename)\n", self.expr(fields))),
            6 => out.push_str(&format!("{pad}t_int[{}] = nil\n", self.expr(fields))),
            7 => {
                out.push_str(&format!("{pad}if ({}) {{\n", self.cond(fields)));
                let saved = (self.locals.len(), self.strings.len());
                self.stmt(fields, depth + 1, out);
                self.locals.truncate(saved.0);
                self.strings.truncate(saved.1);
                out.push_str(&format!("{pad}}} else {{\n"));
                self.stmt(fields, depth + 1, out);
                self.locals.truncate(saved.0);
                self.strings.truncate(saved.1);
                out.push_str(&format!("{pad}}}\n"));
            }
            8 => {
                let n = 1 + self.pick(40);
                out.push_str(&format!("{pad}for (i = 1, {n}) {{\n"));
                let saved = (self.locals.len(), self.strings.len());
                self.locals.push("i".into());
                self.loops += 1;
                self.stmt(fields, depth + 1, out);
                self.loops -= 1;
                self.locals.truncate(saved.0);
                self.strings.truncate(saved.1);
                out.push_str(&format!("{pad}}}\n"));
            }
            9 => out.push_str(&format!("{pad}t_str[user_string(arg2)] += 1\n")),
            10 => {
                let name = format!("s{}", self.strings.len());
                out.push_str(&format!("{pad}var {name} = {}\n", self.string(fields)));
                self.strings.push(name);
            }
            11 => out.push_str(&format!("{pad}g_s = {}\n", self.string(fields))),
            12 => out.push_str(&format!("{pad}t_sv[{}] = {}\n", self.expr(fields), self.string(fields))),
            13 => out.push_str(&format!("{pad}t_str[{}] += 1\n", self.string(fields))),
            // `break` (a loop around it or not: then one made here), then
            // maybe more statements that never run.
            15 => {
                let own = self.loops == 0;
                let saved = (self.locals.len(), self.strings.len());
                if own {
                    out.push_str(&format!("{pad}for (j = 1, {}) {{\n", 1 + self.pick(8)));
                }
                if self.pick(2) == 0 {
                    self.stmt(fields, depth + 1, out);
                }
                out.push_str(&format!("{pad}break\n"));
                self.dead(fields, depth, out);
                if own {
                    out.push_str(&format!("{pad}}}\n"));
                    self.locals.truncate(saved.0);
                    self.strings.truncate(saved.1);
                }
            }
            16 => {
                out.push_str(&format!("{pad}if ({}) {{ return }} else {{ exit() }}\n", self.cond(fields)));
                self.dead(fields, depth, out);
            }
            17 => {
                out.push_str(&format!("{pad}if ({}) {{\n", self.cond(fields)));
                out.push_str(&format!("{pad}    exit()\n"));
                self.dead(fields, depth + 1, out);
                out.push_str(&format!("{pad}}}\n"));
            }
            18 => out.push_str(&format!("{pad}if ({}) {{ quit() }}\n", self.cond(fields))),
            19 => out.push_str(&format!("{pad}g0 = h({}) + 1\n", self.expr(fields))),
            // Locals that may be nil (named nK).
            20 => {
                let name = format!("n{}", self.locals.len());
                let value = if self.pick(3) == 0 { "nil".to_string() } else { format!("t_int[{}]", self.expr(fields)) };
                out.push_str(&format!("{pad}var {name} = {value}\n"));
                self.locals.push(name);
            }
            21 => match self.nilable() {
                Some(n) => {
                    let value = match self.pick(3) {
                        0 => "nil".to_string(),
                        1 => format!("t_int[{}]", self.expr(fields)),
                        _ => self.expr(fields),
                    };
                    out.push_str(&format!("{pad}{n} = {value}\n"));
                }
                None => out.push_str(&format!("{pad}if (t_int[{}] != nil) {{ t_int[0] = nil }}\n", self.expr(fields))),
            },
            _ => out.push_str(&format!("{pad}printf(\"%s %s\\n\", {}, {})\n", self.string(fields), self.string(fields))),
        }
    }

    /// A local in scope that may be nil, if any.
    fn nilable(&mut self) -> Option<String> {
        let n: Vec<String> = self.locals.iter().filter(|l| l.starts_with('n')).cloned().collect();
        (!n.is_empty()).then(|| n[self.pick(n.len())].clone())
    }

    /// Statements after one that always leaves: none, or a few.
    fn dead(&mut self, fields: bool, depth: u32, out: &mut String) {
        let saved = (self.locals.len(), self.strings.len());
        for _ in 0..self.pick(3) {
            // Not another leaving statement (that needs no new coverage).
            let mut st = String::new();
            self.stmt(fields, depth.max(2), &mut st);
            out.push_str(&st);
        }
        self.locals.truncate(saved.0);
        self.strings.truncate(saved.1);
    }

    fn script(&mut self) -> String {
        self.locals.clear();
        self.strings.clear();
        let mut s = String::from(
            "var g0 = 0\nvar g_s = \"\"\nvar t_int = {}\nvar t_comm = {}\nvar t_str = {}\nvar t_sv = {}\n\
             function f(a, b) { if (a > b) { return a - b } return b * 2 }\n\
             function pick(s) { if (s == \"bash\") { return \"a string returned from a function\" } return s }\n\
             function h(a) { if (a > 900) { exit() } return a }\n\
             function quit() { exit() }\n",
        );
        let events = ["syscalls:sys_enter_write", "syscalls:sys_enter_openat", "syscalls:sys_enter_getppid", "sched:sched_switch"];
        let event = events[self.pick(events.len())];
        // Only write/openat have arg1..arg3 to read.
        let fields = event.ends_with("write") || event.ends_with("openat");
        s.push_str(&format!("trace {event} {{\n"));
        let n = 1 + self.pick(6);
        for _ in 0..n {
            let mut st = String::new();
            self.stmt(fields, 0, &mut st);
            if !fields && st.contains("user_string(arg2)") {
                continue;
            }
            s.push_str(&st);
        }
        s.push_str("}\n");
        s
    }
}

#[test]
fn random_probe_bodies_pass_the_verifier() {
    let (seed, scripts) = support::fuzz_params("KTAP_FUZZ", 0x9e37_79b9_7f4a_7c15, 300);
    let mut g = Gen { rng: support::Rng(seed), locals: Vec::new(), strings: Vec::new(), depth: 0, loops: 0 };
    let all: Vec<String> = (0..scripts).map(|_| g.script()).collect();
    // The compile half: the fake catalogue's events stand in for those it
    // lacks (a write has fields like openat's; nothing reads sched_switch's).
    for script in &all {
        if std::env::var_os("KTAP_FUZZ_SHOW").is_some() { eprintln!("=== script\n{script}"); }
        support::compiles(&script.replace("sys_enter_openat", "sys_enter_write").replace("sched:sched_switch", "sched:sched_process_exec"));
    }
    if !support::need_root() {
        return;
    }
    // Every script is loaded (a long run reports its rejection rate);
    // the first three failures are shown whole.
    let mut failures = Vec::new();
    let mut failed = 0;
    for script in &all {
        let run = support::ktap(&["-d", "-e", script]);
        if run.code != Some(0) {
            failed += 1;
            if failures.len() < 3 {
                failures.push(format!("--- script:\n{script}--- stderr:\n{}", run.stderr));
            }
        }
    }
    eprintln!("verifier fuzz: seed {seed:#x}, {scripts} scripts, {failed} rejected by the kernel");
    assert!(failures.is_empty(), "{failed} of {scripts} scripts failed:\n{}", failures.join("\n"));
}
