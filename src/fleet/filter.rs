//! `--filter` expressions: space-separated `key=value` terms, all of which must match (globs allowed).

use super::view::NodeView;

/// One `key=value` term.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Node(String),
    Cabinet(String),
    Tenant(String),
    State(String),
    Health(String),
}

/// A parsed filter; the empty filter matches every node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter(pub Vec<Term>);

const KEYS: &str = "node, cabinet, tenant, state, health";

impl Filter {
    pub fn parse(expr: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for word in expr.split_whitespace() {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| format!("filter term {word:?} is not key=value (keys: {KEYS})"))?;
            if value.is_empty() {
                return Err(format!("filter term {word:?} has an empty value"));
            }
            let value = value.to_string();
            terms.push(match key {
                "node" => Term::Node(value),
                "cabinet" => Term::Cabinet(value),
                "tenant" => Term::Tenant(value),
                "state" => Term::State(value),
                "health" => Term::Health(value),
                other => return Err(format!("unknown filter key {other:?} (keys: {KEYS})")),
            });
        }
        Ok(Filter(terms))
    }

    pub fn matches(&self, view: &NodeView) -> bool {
        self.accepts(&Subject {
            name: view.name,
            cabinet: view.cabinet,
            tenant: view.tenant.as_deref(),
            state: view.state.as_str(),
            health: view.verdict.health.as_str(),
        })
    }

    pub fn accepts(&self, node: &Subject) -> bool {
        self.0.iter().all(|term| match term {
            Term::Node(p) => glob(p, node.name),
            Term::Cabinet(p) => glob(p, node.cabinet),
            Term::Tenant(p) => match node.tenant {
                Some(label) => label.split('+').any(|t| glob(p, t)),
                None => glob(p, "spare") || p == "none",
            },
            Term::State(p) => glob(p, node.state),
            Term::Health(p) => glob(p, node.health),
        })
    }
}

/// What a filter looks at, borrowed from a node view or from a TUI row (whose state may be an action's).
pub struct Subject<'a> {
    pub name: &'a str,
    pub cabinet: &'a str,
    /// `None`: a spare node.
    pub tenant: Option<&'a str>,
    pub state: &'a str,
    pub health: &'a str,
}

/// Shell-style glob with `*` and `?`.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if let Some((star, matched)) = backtrack {
            pi = star + 1;
            ti = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("c01*", "c012n3"));
        assert!(glob("c0?2n*", "c012n3"));
        assert!(!glob("c02*", "c012n3"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
    }

    #[test]
    fn parse_errors_name_the_term() {
        assert!(Filter::parse("cabinet=c012 tenant=acme").is_ok());
        assert!(Filter::parse("colour=red")
            .unwrap_err()
            .contains("unknown filter key"));
        assert!(Filter::parse("acme").unwrap_err().contains("not key=value"));
        assert_eq!(Filter::parse("").unwrap(), Filter::default());
    }
}
