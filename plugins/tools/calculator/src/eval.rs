//! A recursive-descent parser and evaluator for arithmetic expressions.
//!
//! Grammar (lowest precedence first):
//! ```text
//! expr    := term (('+' | '-') term)*
//! term    := unary (('*' | '×' | '/' | '÷' | '%') unary)*
//! unary   := ('-' | '+') unary | power
//! power   := primary ('^' unary)?          right-associative; -2^2 = -4
//! primary := number | name '(' expr (',' expr)* ')' | name | '(' expr ')'
//! number  := digits ['.' digits] [('e' | 'E') ['+' | '-'] digits]
//! ```
//! `%` is the remainder (sign of the dividend). Every error is a value, never
//! a panic: the evaluator must not trap whatever the input.

use std::fmt;

/// Longest input accepted, in characters.
pub const MAX_INPUT: usize = 1000;
/// Deepest nesting accepted (parentheses, unary signs, powers).
pub const MAX_DEPTH: usize = 100;

#[derive(Clone, Debug, PartialEq)]
pub enum CalcError {
    Empty,
    TooLong(usize),
    TooDeep,
    /// Byte offset and what was wrong there.
    Syntax(usize, String),
    UnknownName(String),
    Arity {
        function: String,
        expected: &'static str,
        got: usize,
    },
    DivisionByZero,
    /// A function's argument outside its domain (sqrt(-1), ln(0), ...).
    Domain(String),
    /// The result is not a finite number.
    Overflow,
}

impl fmt::Display for CalcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CalcError::Empty => write!(f, "empty expression"),
            CalcError::TooLong(n) => write!(
                f,
                "expression too long ({n} characters, at most {MAX_INPUT})"
            ),
            CalcError::TooDeep => write!(
                f,
                "expression nested too deeply (at most {MAX_DEPTH} levels)"
            ),
            CalcError::Syntax(at, what) => {
                write!(f, "syntax error at character {}: {what}", at + 1)
            }
            CalcError::UnknownName(n) => write!(
                f,
                "unknown name {n:?} (functions: sqrt, log, ln, exp, sin, cos, tan, abs, round, min, max; constants: pi, e)"
            ),
            CalcError::Arity {
                function,
                expected,
                got,
            } => {
                write!(f, "{function} takes {expected} argument(s), got {got}")
            }
            CalcError::DivisionByZero => write!(f, "division by zero"),
            CalcError::Domain(m) => write!(f, "math domain error: {m}"),
            CalcError::Overflow => write!(f, "result is too large (overflow)"),
        }
    }
}

impl std::error::Error for CalcError {}

pub fn evaluate(input: &str) -> Result<f64, CalcError> {
    let n = input.chars().count();
    if n > MAX_INPUT {
        return Err(CalcError::TooLong(n));
    }
    let mut p = Parser {
        src: input,
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    if p.at_end() {
        return Err(CalcError::Empty);
    }
    let v = p.expr()?;
    p.skip_ws();
    if let Some(c) = p.peek() {
        return Err(CalcError::Syntax(p.pos, format!("unexpected {c:?}")));
    }
    finite(v)
}

/// Integers print without a fraction; everything else as the shortest
/// decimal that round-trips.
pub fn format_number(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn finite(v: f64) -> Result<f64, CalcError> {
    if v.is_finite() {
        Ok(if v == 0.0 { 0.0 } else { v })
    } else {
        Err(CalcError::Overflow)
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Result<(), CalcError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(CalcError::TooDeep)
        } else {
            Ok(())
        }
    }

    fn expr(&mut self) -> Result<f64, CalcError> {
        let mut v = self.term()?;
        loop {
            if self.eat('+') {
                v = finite(v + self.term()?)?;
            } else if self.eat('-') || self.eat('−') {
                v = finite(v - self.term()?)?;
            } else {
                return Ok(v);
            }
        }
    }

    fn term(&mut self) -> Result<f64, CalcError> {
        let mut v = self.unary()?;
        loop {
            if self.eat('*') || self.eat('×') {
                v = finite(v * self.unary()?)?;
            } else if self.eat('/') || self.eat('÷') {
                let d = self.unary()?;
                if d == 0.0 {
                    return Err(CalcError::DivisionByZero);
                }
                v = finite(v / d)?;
            } else if self.eat('%') {
                let d = self.unary()?;
                if d == 0.0 {
                    return Err(CalcError::DivisionByZero);
                }
                v = finite(v % d)?;
            } else {
                return Ok(v);
            }
        }
    }

    fn unary(&mut self) -> Result<f64, CalcError> {
        self.enter()?;
        let v = if self.eat('-') || self.eat('−') {
            -self.unary()?
        } else if self.eat('+') {
            self.unary()?
        } else {
            self.power()?
        };
        self.depth -= 1;
        Ok(v)
    }

    fn power(&mut self) -> Result<f64, CalcError> {
        let base = self.primary()?;
        if self.eat('^') {
            let exp = self.unary()?;
            if base == 0.0 && exp < 0.0 {
                return Err(CalcError::DivisionByZero);
            }
            let v = base.powf(exp);
            if v.is_nan() {
                return Err(CalcError::Domain(format!(
                    "{base} ^ {exp} is not a real number"
                )));
            }
            return finite(v);
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<f64, CalcError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            Some('(') => {
                self.bump();
                self.enter()?;
                let v = self.expr()?;
                self.depth -= 1;
                if !self.eat(')') {
                    return Err(CalcError::Syntax(self.pos, "expected ')'".into()));
                }
                Ok(v)
            }
            Some(c) if c.is_ascii_digit() || c == '.' => self.number(),
            Some(c) if c.is_alphabetic() || c == 'π' => {
                while self
                    .peek()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == 'π')
                {
                    self.bump();
                }
                let name = self.src[start..self.pos].to_lowercase();
                if self.eat('(') {
                    self.enter()?;
                    let mut args = vec![self.expr()?];
                    while self.eat(',') {
                        args.push(self.expr()?);
                    }
                    self.depth -= 1;
                    if !self.eat(')') {
                        return Err(CalcError::Syntax(self.pos, "expected ',' or ')'".into()));
                    }
                    call(&name, &args)
                } else {
                    match name.as_str() {
                        "pi" | "π" => Ok(std::f64::consts::PI),
                        "e" => Ok(std::f64::consts::E),
                        _ => Err(CalcError::UnknownName(name)),
                    }
                }
            }
            Some(c) => Err(CalcError::Syntax(start, format!("unexpected {c:?}"))),
            None => Err(CalcError::Syntax(
                start,
                "unexpected end of expression".into(),
            )),
        }
    }

    fn number(&mut self) -> Result<f64, CalcError> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let s = p.pos;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.bump();
            }
            p.pos > s
        };
        let int = digits(self);
        let mut frac = false;
        if self.peek() == Some('.') {
            self.bump();
            frac = digits(self);
        }
        if !int && !frac {
            return Err(CalcError::Syntax(start, "a number needs digits".into()));
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            // An exponent needs digits: `2e` is refused rather than read as 2·e.
            let save = self.pos;
            self.bump();
            if matches!(self.peek(), Some('+' | '-')) {
                self.bump();
            }
            if !digits(self) {
                self.pos = save;
                return Err(CalcError::Syntax(save, "exponent needs digits".into()));
            }
        }
        let text = &self.src[start..self.pos];
        text.parse::<f64>()
            .map_err(|_| CalcError::Syntax(start, format!("bad number {text:?}")))
            .and_then(finite)
    }
}

fn call(name: &str, args: &[f64]) -> Result<f64, CalcError> {
    let arity = |expected: &'static str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(CalcError::Arity {
                function: name.into(),
                expected,
                got: args.len(),
            })
        }
    };
    let one = |f: fn(f64) -> f64| -> Result<f64, CalcError> {
        arity("1", args.len() == 1)?;
        finite(f(args[0]))
    };
    match name {
        "sqrt" => {
            arity("1", args.len() == 1)?;
            if args[0] < 0.0 {
                return Err(CalcError::Domain(format!(
                    "sqrt of negative number {}",
                    args[0]
                )));
            }
            finite(args[0].sqrt())
        }
        "ln" | "log" => {
            // log(x) is base 10, log(x, b) base b; ln(x) base e.
            let (x, base) = match (name, args) {
                ("ln", [x]) => (*x, std::f64::consts::E),
                ("log", [x]) => (*x, 10.0),
                ("log", [x, b]) => (*x, *b),
                _ => {
                    return Err(CalcError::Arity {
                        function: name.into(),
                        expected: if name == "ln" { "1" } else { "1 or 2" },
                        got: args.len(),
                    });
                }
            };
            if x <= 0.0 {
                return Err(CalcError::Domain(format!(
                    "{name} of non-positive number {x}"
                )));
            }
            if base <= 0.0 || base == 1.0 {
                return Err(CalcError::Domain(format!("logarithm base {base}")));
            }
            // Exact where the platform has it: log(1000) is 3, not 2.9999999999999996.
            finite(if base == 10.0 {
                x.log10()
            } else if base == 2.0 {
                x.log2()
            } else if base == std::f64::consts::E {
                x.ln()
            } else {
                x.ln() / base.ln()
            })
        }
        "exp" => one(f64::exp),
        "sin" => one(f64::sin),
        "cos" => one(f64::cos),
        "tan" => one(f64::tan),
        "abs" => one(f64::abs),
        // Half away from zero, as people round.
        "round" => match args {
            [x] => finite(x.round()),
            [x, d] if *d == d.trunc() && (0.0..=15.0).contains(d) => {
                let m = 10f64.powi(*d as i32);
                finite((x * m).round() / m)
            }
            [_, d] => Err(CalcError::Domain(format!("round to {d} digits (0 to 15)"))),
            _ => Err(CalcError::Arity {
                function: name.into(),
                expected: "1 or 2",
                got: args.len(),
            }),
        },
        "min" => args
            .iter()
            .copied()
            .reduce(f64::min)
            .ok_or(CalcError::Arity {
                function: name.into(),
                expected: "at least 1",
                got: 0,
            }),
        "max" => args
            .iter()
            .copied()
            .reduce(f64::max)
            .ok_or(CalcError::Arity {
                function: name.into(),
                expected: "at least 1",
                got: 0,
            }),
        _ => Err(CalcError::UnknownName(name.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> f64 {
        evaluate(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(ok("1 + 2 * 3"), 7.0);
        assert_eq!(ok("(1 + 2) * 3"), 9.0);
        assert_eq!(ok("10 - 4 - 3"), 3.0, "left-associative minus");
        assert_eq!(ok("64 / 4 / 2"), 8.0, "left-associative division");
        assert_eq!(ok("2 ^ 3 ^ 2"), 512.0, "right-associative power");
        assert_eq!(ok("-2 ^ 2"), -4.0, "power binds tighter than unary minus");
        assert_eq!(ok("2 ^ -1"), 0.5);
        assert_eq!(ok("2 * -3"), -6.0);
        assert_eq!(ok("--3"), 3.0);
        assert_eq!(ok("7 % 3"), 1.0);
        assert_eq!(ok("-7 % 3"), -1.0, "remainder has the dividend's sign");
        assert_eq!(ok("6 × 7 ÷ 2 − 1"), 20.0);
        assert_eq!(ok("2 + 3 * 4 ^ 2 / 8"), 8.0);
    }

    #[test]
    fn numbers_functions_and_constants() {
        assert_eq!(ok("1.5e3"), 1500.0);
        assert_eq!(ok(".5 + 1."), 1.5);
        assert_eq!(ok("2.5E-1"), 0.25);
        assert_eq!(ok("sqrt(16)"), 4.0);
        assert_eq!(ok("log(1000)"), 3.0);
        assert_eq!(ok("log(8, 2)"), 3.0);
        assert!(close(ok("ln(e)"), 1.0));
        assert!(close(ok("exp(1)"), std::f64::consts::E));
        assert!(close(ok("sin(pi / 2)"), 1.0));
        assert!(close(ok("cos(0)"), 1.0));
        assert!(close(ok("tan(0)"), 0.0));
        assert_eq!(ok("abs(-3.5)"), 3.5);
        assert_eq!(ok("round(2.5)"), 3.0);
        assert_eq!(ok("round(-2.5)"), -3.0);
        assert_eq!(ok("round(1.23456, 2)"), 1.23);
        assert_eq!(ok("min(3, 1, 2)"), 1.0);
        assert_eq!(ok("max(3, 1, 2)"), 3.0);
        assert_eq!(ok("SQRT(9) + PI - pi"), 3.0);
    }

    #[test]
    fn every_error_is_reported() {
        assert_eq!(evaluate(""), Err(CalcError::Empty));
        assert_eq!(evaluate("   "), Err(CalcError::Empty));
        assert_eq!(evaluate("1 / 0"), Err(CalcError::DivisionByZero));
        assert_eq!(evaluate("1 % 0"), Err(CalcError::DivisionByZero));
        assert_eq!(evaluate("0 ^ -1"), Err(CalcError::DivisionByZero));
        assert_eq!(evaluate("10 ^ 400"), Err(CalcError::Overflow));
        assert_eq!(evaluate("1e308 * 10"), Err(CalcError::Overflow));
        assert_eq!(evaluate("exp(1000)"), Err(CalcError::Overflow));
        assert!(matches!(evaluate("sqrt(-1)"), Err(CalcError::Domain(_))));
        assert!(matches!(evaluate("ln(0)"), Err(CalcError::Domain(_))));
        assert!(matches!(evaluate("log(8, 1)"), Err(CalcError::Domain(_))));
        assert!(matches!(evaluate("(-8) ^ 0.5"), Err(CalcError::Domain(_))));
        assert_eq!(
            evaluate("foo(1)"),
            Err(CalcError::UnknownName("foo".into()))
        );
        assert_eq!(evaluate("x + 1"), Err(CalcError::UnknownName("x".into())));
        assert!(matches!(
            evaluate("sqrt(1, 2)"),
            Err(CalcError::Arity { got: 2, .. })
        ));
        assert!(matches!(evaluate("1 +"), Err(CalcError::Syntax(3, _))));
        assert!(matches!(evaluate("(1 + 2"), Err(CalcError::Syntax(_, _))));
        assert!(matches!(evaluate("1 2"), Err(CalcError::Syntax(2, _))));
        assert!(matches!(evaluate("2e"), Err(CalcError::Syntax(1, _))));
        assert!(matches!(evaluate("1 $ 2"), Err(CalcError::Syntax(2, _))));
        assert!(matches!(evaluate("."), Err(CalcError::Syntax(0, _))));
        let long = "1+".repeat(600) + "1";
        assert!(matches!(evaluate(&long), Err(CalcError::TooLong(1201))));
        let deep = "(".repeat(200) + "1" + &")".repeat(200);
        assert_eq!(evaluate(&deep), Err(CalcError::TooDeep));
        assert_eq!(evaluate(&"-".repeat(500)), Err(CalcError::TooDeep));
        assert_eq!(evaluate("1/0").unwrap_err().to_string(), "division by zero");
        assert_eq!(
            evaluate("1 +").unwrap_err().to_string(),
            "syntax error at character 4: unexpected end of expression"
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap stand-in for the fuzzer: every short string over the
        // grammar's alphabet evaluates or errors, never panics.
        let alphabet: Vec<char> = "0123456789.+-*/%^()e, sqrtpiπ×÷−".chars().collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let len = (seed % 12) as usize;
            let s: String = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            let _ = evaluate(&s);
        }
    }

    #[test]
    fn formatting() {
        assert_eq!(format_number(42.0), "42");
        assert_eq!(format_number(-3.0), "-3");
        assert_eq!(format_number(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(format_number(2.5), "2.5");
        assert_eq!(format_number(1e20), "100000000000000000000");
    }
}
