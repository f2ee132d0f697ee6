//! `successCondition`: `result OP number` comparisons (`< <= > >= == !=`)
//! joined by `&&` and `||` (`&&` binds tighter), nothing more.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Comparison {
    op: Op,
    number: f64,
}

/// A parsed condition: any of the `||` branches, each all of its comparisons.
#[derive(Debug, Clone, PartialEq)]
pub struct SuccessCondition {
    any: Vec<Vec<Comparison>>,
}

impl SuccessCondition {
    /// Parses a condition; the error says what was expected where.
    pub fn parse(text: &str) -> Result<SuccessCondition, String> {
        let mut any = Vec::new();
        for branch in text.split("||") {
            let mut all = Vec::new();
            for part in branch.split("&&") {
                all.push(comparison(part.trim()).map_err(|e| format!("{e} in {:?}", text.trim()))?);
            }
            any.push(all);
        }
        Ok(SuccessCondition { any })
    }

    /// Whether a value satisfies the condition.
    pub fn holds(&self, result: f64) -> bool {
        self.any.iter().any(|all| {
            all.iter().all(|c| match c.op {
                Op::Lt => result < c.number,
                Op::Le => result <= c.number,
                Op::Gt => result > c.number,
                Op::Ge => result >= c.number,
                Op::Eq => result == c.number,
                Op::Ne => result != c.number,
            })
        })
    }
}

fn comparison(text: &str) -> Result<Comparison, String> {
    if text.is_empty() {
        return Err("expected `result OP number`, found nothing".into());
    }
    let Some(rest) = text.strip_prefix("result") else {
        return Err(format!("expected `result` at {text:?}"));
    };
    let rest = rest.trim_start();
    // Two-character operators first.
    let ops = [("<=", Op::Le), (">=", Op::Ge), ("==", Op::Eq), ("!=", Op::Ne), ("<", Op::Lt), (">", Op::Gt)];
    let Some((sym, op)) = ops.iter().find(|(s, _)| rest.starts_with(s)) else {
        return Err(format!("expected one of < <= > >= == != after `result`, found {rest:?}"));
    };
    let number = rest[sym.len()..].trim();
    match number.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(Comparison { op: *op, number: n }),
        _ => Err(format!("expected a number after `result {sym}`, found {number:?}")),
    }
}

impl fmt::Display for SuccessCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let branches: Vec<String> = self
            .any
            .iter()
            .map(|all| {
                let parts: Vec<String> =
                    all.iter().map(|c| format!("result {} {}", c.op.symbol(), c.number)).collect();
                parts.join(" && ")
            })
            .collect();
        f.write_str(&branches.join(" || "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_and_precedence() {
        let c = SuccessCondition::parse("result < 0.01").unwrap();
        assert!(c.holds(0.0) && !c.holds(0.01) && !c.holds(0.5));
        let c = SuccessCondition::parse("result >= 0.9 && result <= 1 || result == 42").unwrap();
        assert!(c.holds(0.95) && c.holds(1.0) && c.holds(42.0));
        assert!(!c.holds(0.5) && !c.holds(2.0));
        let c = SuccessCondition::parse("  result!=3").unwrap();
        assert!(c.holds(2.0) && !c.holds(3.0));
        assert!(SuccessCondition::parse("result > -1e3").unwrap().holds(-999.0));
        assert_eq!(
            SuccessCondition::parse("result>1&&result<2 || result==5").unwrap().to_string(),
            "result > 1 && result < 2 || result == 5"
        );
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        for (text, says) in [
            ("", "found nothing"),
            ("result", "expected one of < <= > >= == !="),
            ("value < 1", "expected `result`"),
            ("result < ", "expected a number"),
            ("result < x", "expected a number"),
            ("result < 1 &&", "found nothing"),
            ("result =< 1", "expected one of"),
            ("len(result) > 0", "expected `result`"),
            ("result < NaN", "expected a number"),
            ("result < 1 | result > 2", "expected a number"),
        ] {
            let e = SuccessCondition::parse(text).expect_err(text);
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }
}
