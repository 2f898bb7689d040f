//! Spin's variables, resolved as `spin up` resolves them, and the guest
//! interface `fermyon:spin/variables@2.0.0` that reads them.
//!
//! An application declares variables in `[variables]` (each either
//! `required = true` or with a `default`, maybe `secret`); a component sees
//! only its own `[component.<id>.variables]`, whose values are templates
//! over the application's variables (`"{{ greeting }}, {{ audience }}!"`,
//! Spin's `spin-expressions` syntax). An application variable takes its
//! value from `SPIN_VARIABLE_<UPPERCASE_NAME>` in the environment, else
//! from its default; a required variable with neither stops the host at
//! start-up, with Spin's words. Local Spin reads the environment when asked;
//! the environment does not change under a running process, so the host
//! reads it once, at start-up, and resolves every component variable then.
//!
//! Not done: Spin's default provider also reads a `.env` file in the
//! current directory, and a runtime config may add Vault or Azure Key Vault
//! providers; the host reads the environment only.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "variables-host",
        imports: { default: async | trappable },
    });
}

use bindings::fermyon::spin::variables::{self, Error};

/// The prefix of the environment variables that set application variables.
pub const ENV_PREFIX: &str = "SPIN_VARIABLE_";

/// Where application variables' values come from.
#[derive(Debug, Clone, Default)]
pub enum VariableSource {
    /// The process's environment (`SPIN_VARIABLE_<NAME>`), as `spin up`.
    #[default]
    ProcessEnvironment,
    /// These environment variables (full names, `SPIN_VARIABLE_<NAME>`), as
    /// if they were the environment: for tests, which cannot change the
    /// process's environment safely.
    Given(BTreeMap<String, String>),
    /// These first (full names, as for `Given`), then the process's
    /// environment: how the default run hands the component a setting of
    /// its own command line (the auth secret).
    EnvironmentWith(BTreeMap<String, String>),
}

impl VariableSource {
    /// `SPIN_VARIABLE_<NAME>` for `name`, if set.
    fn lookup(&self, name: &str) -> Result<Option<String>, VariablesError> {
        let env_name = format!("{ENV_PREFIX}{}", name.to_ascii_uppercase());
        match self {
            VariableSource::Given(map) => Ok(map.get(&env_name).cloned()),
            VariableSource::EnvironmentWith(map) if map.contains_key(&env_name) => {
                Ok(map.get(&env_name).cloned())
            }
            VariableSource::EnvironmentWith(_) => VariableSource::ProcessEnvironment.lookup(name),
            VariableSource::ProcessEnvironment => match std::env::var(&env_name) {
                Ok(value) => Ok(Some(value)),
                Err(std::env::VarError::NotPresent) => Ok(None),
                Err(std::env::VarError::NotUnicode(_)) => Err(VariablesError::Provider(format!(
                    "failed to resolve env var {env_name}: environment variable was not valid unicode"
                ))),
            },
        }
    }
}

/// One `[variables]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Variable {
    pub description: Option<String>,
    pub default: Option<String>,
    pub required: bool,
    /// Spin keeps secrets out of its logs; the host never logs values.
    pub secret: bool,
}

/// Why variables cannot be resolved; the texts are Spin's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariablesError {
    #[error("invalid variable name: {0}")]
    InvalidName(String),
    #[error("invalid variable template: {0}")]
    InvalidTemplate(String),
    #[error("provider error: {0}")]
    Provider(String),
    #[error("undefined variable: {0}")]
    Undefined(String),
}

/// Checks a variable name as Spin does: lower-case ASCII letters, digits and
/// single underscores, starting with a letter and not ending with `_`.
pub fn check_name(key: &str) -> Result<(), VariablesError> {
    let reason = if key.is_empty() {
        Some("must not be empty".to_owned())
    } else if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        Some(format!(
            "invalid character {c:?}. Variable names may contain only lower-case letters, \
             numbers, and underscores."
        ))
    } else if !key.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("must start with a lowercase ASCII letter".to_owned())
    } else if !key.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        Some("must end with a lowercase ASCII letter or digit".to_owned())
    } else if key.contains("__") {
        Some("must not contain multiple consecutive underscores".to_owned())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(VariablesError::InvalidName(format!("{key:?}: {reason}"))),
        None => Ok(()),
    }
}

/// One piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    /// The name between `{{` and `}}`, trimmed.
    Variable(String),
}

/// A string with `{{ name }}` expressions, as Spin's `spin-expressions`
/// reads it: text up to the next `{{` is literal, an expression runs to the
/// next `}}`, and a `{{` with no `}}` after it is an error. A lone `}` or
/// `{` is literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, VariablesError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("{{") {
                let Some((expr, tail)) = after.split_once("}}") else {
                    return Err(VariablesError::InvalidTemplate(
                        "unmatched '{{' in template".to_owned(),
                    ));
                };
                parts.push(Part::Variable(expr.trim().to_owned()));
                rest = tail;
            } else {
                let end = rest.find("{{").unwrap_or(rest.len());
                parts.push(Part::Literal(rest[..end].to_owned()));
                rest = &rest[end..];
            }
        }
        Ok(Template { parts })
    }

    /// Whether there is no expression in it.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Joins the parts, each variable's value from `value`.
    fn render(
        &self,
        mut value: impl FnMut(&str) -> Result<String, VariablesError>,
    ) -> Result<String, VariablesError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Variable(name) => out.push_str(&value(name)?),
            }
        }
        Ok(out)
    }
}

impl std::fmt::Display for Template {
    /// As Spin prints a template: expressions as `{{ name }}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for part in &self.parts {
            match part {
                Part::Literal(text) => f.write_str(text)?,
                Part::Variable(name) => write!(f, "{{{{ {name} }}}}")?,
            }
        }
        Ok(())
    }
}

/// The application's variables with their values.
#[derive(Debug, Clone, Default)]
pub struct AppVariables {
    declared: BTreeMap<String, Variable>,
    /// The value of every variable that has one.
    values: BTreeMap<String, String>,
}

impl AppVariables {
    /// Checks the names and reads each variable's value from `source`, else
    /// its default. A required variable may be left without a value here:
    /// [`Self::check_required`] refuses that.
    pub fn resolve(
        declared: &BTreeMap<String, Variable>,
        source: &VariableSource,
    ) -> Result<Self, VariablesError> {
        let mut values = BTreeMap::new();
        for (name, variable) in declared {
            check_name(name)?;
            if let Some(value) = source.lookup(name)?.or_else(|| variable.default.clone()) {
                values.insert(name.clone(), value);
            }
        }
        Ok(AppVariables {
            declared: declared.clone(),
            values,
        })
    }

    /// Refuses, with Spin's words, required variables with no value.
    pub fn check_required(&self) -> Result<(), VariablesError> {
        let unresolved: Vec<String> = self
            .declared
            .keys()
            .filter(|name| !self.values.contains_key(*name))
            .map(|name| format!("Key({name:?})"))
            .collect();
        if unresolved.is_empty() {
            Ok(())
        } else {
            Err(VariablesError::Provider(format!(
                "no provider resolved required variable(s): [{}]",
                unresolved.join(", ")
            )))
        }
    }

    /// `template` with every variable's value.
    pub fn render(&self, template: &Template) -> Result<String, VariablesError> {
        template.render(|name| match self.values.get(name) {
            Some(value) => Ok(value.clone()),
            None if self.declared.contains_key(name) => Err(VariablesError::Provider(format!(
                "no provider resolved required variable {name:?}"
            ))),
            None => Err(VariablesError::InvalidName(name.to_owned())),
        })
    }

    /// `template` with the variables' defaults only (what Spin checks a
    /// manifest with before it reads the environment); `None` if a variable
    /// in it has no default or is not declared.
    pub fn render_with_defaults(&self, template: &Template) -> Option<String> {
        template
            .render(|name| {
                self.declared
                    .get(name)
                    .and_then(|v| v.default.clone())
                    .ok_or_else(|| VariablesError::InvalidName(name.to_owned()))
            })
            .ok()
    }

    /// Checks one component's `[component.<id>.variables]`: each name, and
    /// each template, which may name only declared variables.
    pub fn check_templates(
        &self,
        variables: &BTreeMap<String, String>,
    ) -> Result<Vec<(String, Template)>, VariablesError> {
        let mut templates = Vec::with_capacity(variables.len());
        for (name, text) in variables {
            check_name(name)?;
            let template = Template::parse(text)?;
            for part in template.parts() {
                if let Part::Variable(var) = part
                    && !self.declared.contains_key(var)
                {
                    return Err(VariablesError::InvalidTemplate(format!(
                        "unknown variable {var:?}"
                    )));
                }
            }
            templates.push((name.clone(), template));
        }
        Ok(templates)
    }

    /// The values of one component's `[component.<id>.variables]`, checked
    /// and rendered.
    pub fn component(
        &self,
        component_id: &str,
        variables: &BTreeMap<String, String>,
    ) -> Result<ComponentVariables, VariablesError> {
        let mut values = BTreeMap::new();
        for (name, template) in self.check_templates(variables)? {
            values.insert(name, self.render(&template)?);
        }
        Ok(ComponentVariables {
            component_id: component_id.into(),
            values: Arc::new(values),
        })
    }
}

/// What one component's `variables.get` answers from: shared by all its
/// instances.
#[derive(Debug, Clone, Default)]
pub struct ComponentVariables {
    component_id: Arc<str>,
    values: Arc<BTreeMap<String, String>>,
}

impl ComponentVariables {
    /// What Spin answers `get(name)`: `invalid-name` for a name that is not
    /// a variable name, `undefined` for one the component does not declare.
    pub fn get(&self, name: &str) -> Result<String, Error> {
        if let Err(VariablesError::InvalidName(msg)) = check_name(name) {
            return Err(Error::InvalidName(msg));
        }
        self.values.get(name).cloned().ok_or_else(|| {
            Error::Undefined(format!(
                "no variable for {:?}.{name:?}",
                &*self.component_id
            ))
        })
    }
}

struct Variables;

impl HasData for Variables {
    type Data<'a> = &'a ComponentVariables;
}

impl variables::Host for &ComponentVariables {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        let answer = ComponentVariables::get(self, &name);
        if let Err(e) = &answer {
            tracing::debug!(component = %self.component_id, %name, error = ?e, "variable not given");
        }
        Ok(answer)
    }
}

/// Adds the variables interface to a linker whose store data gives the
/// instance's component variables.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> &ComponentVariables,
) -> wasmtime::Result<()> {
    variables::add_to_linker::<T, Variables>(linker, view)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(entries: &[(&str, Option<&str>)]) -> BTreeMap<String, Variable> {
        entries
            .iter()
            .map(|(name, default)| {
                (
                    name.to_string(),
                    Variable {
                        default: default.map(str::to_owned),
                        required: default.is_none(),
                        ..Variable::default()
                    },
                )
            })
            .collect()
    }

    fn env(pairs: &[(&str, &str)]) -> VariableSource {
        VariableSource::Given(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn templates_split_as_spin_expressions_does() {
        let t = Template::parse("a-{{ x }}-b{{y}}").unwrap();
        assert_eq!(
            t.parts(),
            [
                Part::Literal("a-".into()),
                Part::Variable("x".into()),
                Part::Literal("-b".into()),
                Part::Variable("y".into())
            ]
        );
        assert!(Template::parse("").unwrap().parts().is_empty());
        assert!(Template::parse("a } b { c").unwrap().is_literal());
        assert_eq!(
            Template::parse("{{ ok }} {{ open").unwrap_err().to_string(),
            "invalid variable template: unmatched '{{' in template"
        );
        assert_eq!(t.to_string(), "a-{{ x }}-b{{ y }}");
    }

    #[test]
    fn names_are_checked_with_spins_words() {
        for good in ["a", "a_b", "a1", "redis_address"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        let reason = |name| check_name(name).unwrap_err().to_string();
        assert_eq!(
            reason("Bad-Name"),
            "invalid variable name: \"Bad-Name\": invalid character 'B'. Variable names may \
             contain only lower-case letters, numbers, and underscores."
        );
        assert!(reason("").ends_with("must not be empty"));
        assert!(reason("9x").ends_with("must start with a lowercase ASCII letter"));
        assert!(reason("x_").ends_with("must end with a lowercase ASCII letter or digit"));
        assert!(reason("a__b").ends_with("must not contain multiple consecutive underscores"));
    }

    #[test]
    fn the_environment_comes_before_defaults() {
        let vars = declared(&[("greeting", Some("hello")), ("audience", None)]);
        let app = AppVariables::resolve(
            &vars,
            &env(&[
                ("SPIN_VARIABLE_AUDIENCE", "world"),
                ("SPIN_VARIABLE_GREETING", "hi"),
            ]),
        )
        .unwrap();
        let component = app
            .component(
                "c",
                &[(
                    "message".to_owned(),
                    "{{greeting}}, {{ audience }}!".to_owned(),
                )]
                .into(),
            )
            .unwrap();
        assert_eq!(component.get("message").unwrap(), "hi, world!");
        let app = AppVariables::resolve(&vars, &env(&[("SPIN_VARIABLE_AUDIENCE", "")])).unwrap();
        let t = Template::parse("{{ greeting }}/{{ audience }}").unwrap();
        assert_eq!(app.render(&t).unwrap(), "hello/");
        assert_eq!(app.render_with_defaults(&t), None);
    }

    #[test]
    fn a_required_variable_without_a_value_is_refused() {
        let vars = declared(&[("b", None), ("a", None), ("c", Some(""))]);
        let app = AppVariables::resolve(&vars, &env(&[])).unwrap();
        let err = app.check_required().unwrap_err();
        assert_eq!(
            err.to_string(),
            "provider error: no provider resolved required variable(s): [Key(\"a\"), Key(\"b\")]"
        );
    }

    #[test]
    fn component_variables_name_only_declared_variables() {
        let app = AppVariables::resolve(&declared(&[("a", Some("1"))]), &env(&[])).unwrap();
        let one = |text: &str| app.component("c", &[("v".to_owned(), text.to_owned())].into());
        assert_eq!(
            one("{{ nope }}").unwrap_err().to_string(),
            "invalid variable template: unknown variable \"nope\""
        );
        assert!(matches!(
            one("{{ a").unwrap_err(),
            VariablesError::InvalidTemplate(_)
        ));
        let c = one("x{{a}}y").unwrap();
        assert_eq!(c.get("v").unwrap(), "x1y");
        assert!(
            matches!(c.get("w"), Err(Error::Undefined(m)) if m == "no variable for \"c\".\"w\"")
        );
        assert!(matches!(c.get("W"), Err(Error::InvalidName(_))));
    }
}
