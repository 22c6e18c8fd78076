//! The command line's flags for settings, built from their one declaration in
//! [`source_io::settings`]. A flag's value is not parsed here: it goes over the environment into
//! [`Config::from_lookup`], so a flag and its variable are validated by the same code and
//! an error names both.

use std::collections::HashMap;
use std::marker::PhantomData;

use clap::{Arg, ArgAction, ArgMatches, Command, FromArgMatches};

use source_io::config::{Config, ConfigError};
use source_io::settings::{self, Fallback, Flag, Setting};

/// Which settings a command takes as flags.
pub trait FlagGroup {
    /// The settings, each with a [`Flag::Long`] (or the [`Flag::Second`] of one).
    const SETTINGS: &'static [Setting];
}

/// The settings of `serve`.
#[derive(Debug, Clone)]
pub struct Serve;

impl FlagGroup for Serve {
    const SETTINGS: &'static [Setting] = &[
        settings::LAKE_DIR,
        settings::WRITE_KEY,
        settings::WRITE_KEY_PREVIOUS,
        settings::SEGMENT_WRITE_KEY,
        settings::SEGMENT_WRITE_KEY_PREVIOUS,
        settings::SCHEMA_NAME,
        settings::TIMESTAMP_TOLERANCE_SECS,
    ];
}

/// The settings of `pull` and `backfill`.
#[derive(Debug, Clone)]
pub struct Pull;

impl FlagGroup for Pull {
    const SETTINGS: &'static [Setting] = &[
        settings::LAKE_DIR,
        settings::PULL_CHANNELS,
        settings::PULL_REQUESTS_PER_MINUTE,
    ];
}

/// The settings of `reconcile`.
#[derive(Debug, Clone)]
pub struct Reconcile;

impl FlagGroup for Reconcile {
    const SETTINGS: &'static [Setting] = &[settings::LAKE_DIR];
}

/// The values given as flags, by variable name.
#[derive(Debug, Clone)]
pub struct SettingFlags<G> {
    given: HashMap<&'static str, String>,
    group: PhantomData<G>,
}

impl<G> SettingFlags<G> {
    /// Whether `setting` was given on the command line.
    pub fn gave(&self, setting: &Setting) -> bool {
        self.given.contains_key(setting.var)
    }

    /// The configuration: these flags over `environment`, read and validated once.
    pub fn config(
        &self,
        environment: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Config::from_lookup(|var| self.given.get(var).cloned().or_else(|| environment(var)))
    }

    /// The flags' values by variable, for a test.
    #[cfg(test)]
    fn given(&self) -> &HashMap<&'static str, String> {
        &self.given
    }
}

/// The setting whose flag is the second occurrence of `--<name>`.
fn second_of<G: FlagGroup>(name: &str) -> Option<&'static Setting> {
    G::SETTINGS
        .iter()
        .find(|s| matches!(s.flag, Flag::Second(n) if n == name))
}

/// The help line: the setting's own, its variable and its default.
fn help_of(setting: &Setting, second: Option<&Setting>) -> String {
    let default = match setting.default {
        Fallback::Value(value) => value,
        Fallback::Described(text) => text,
    };
    let vars = match second {
        Some(second) => format!("{}, {}", setting.var, second.var),
        None => setting.var.to_owned(),
    };
    format!("{} [env: {vars}] [default: {default}]", setting.help)
}

impl<G: FlagGroup> clap::Args for SettingFlags<G> {
    fn augment_args(cmd: Command) -> Command {
        G::SETTINGS.iter().fold(cmd, |cmd, setting| {
            let Flag::Long(name) = setting.flag else {
                return cmd;
            };
            let second = second_of::<G>(name);
            cmd.arg(
                Arg::new(setting.var)
                    .long(name)
                    .value_name("VALUE")
                    .num_args(1)
                    .action(if second.is_some() {
                        ArgAction::Append
                    } else {
                        ArgAction::Set
                    })
                    .help(help_of(setting, second)),
            )
        })
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl<G: FlagGroup> FromArgMatches for SettingFlags<G> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut given = HashMap::new();
        for setting in G::SETTINGS {
            let Flag::Long(name) = setting.flag else {
                continue;
            };
            let values: Vec<String> = matches
                .get_many::<String>(setting.var)
                .map(|values| values.cloned().collect())
                .unwrap_or_default();
            let second = second_of::<G>(name);
            // Keys given on the command line replace the environment's pair: one flag
            // alone leaves no previous key behind from the environment.
            if let (Some(second), false) = (second, values.is_empty()) {
                given.insert(second.var, String::new());
            }
            let mut targets = std::iter::once(setting).chain(second);
            for value in values {
                let Some(target) = targets.next() else {
                    return Err(clap::Error::raw(
                        clap::error::ErrorKind::TooManyValues,
                        format!("--{name} is given at most twice (current and previous)\n"),
                    ));
                };
                given.insert(target.var, value);
            }
        }
        Ok(Self {
            given,
            group: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Serving {
        #[command(flatten)]
        settings: SettingFlags<Serve>,
    }

    fn parse(args: &[&str]) -> Result<Serving, clap::Error> {
        Serving::try_parse_from(std::iter::once("serve").chain(args.iter().copied()))
    }

    #[test]
    fn a_repeated_key_flag_gives_the_current_then_the_previous_key() {
        let parsed = parse(&[
            "--write-key",
            "current-key-0123456",
            "--write-key",
            "previous-key-654321",
            "--schema",
            "klaviyo_eu",
        ])
        .unwrap();
        let given = parsed.settings.given();
        assert_eq!(given["WRITE_KEY"], "current-key-0123456");
        assert_eq!(given["WRITE_KEY_PREVIOUS"], "previous-key-654321");
        assert_eq!(given["SCHEMA_NAME"], "klaviyo_eu");
        assert!(parse(&["--write-key", "a", "--write-key", "b", "--write-key", "c"]).is_err());
    }

    #[test]
    fn a_flag_wins_over_the_environment_and_is_validated_like_it() {
        let parsed = parse(&["--schema", "from_flag"]).unwrap();
        let env = |var: &str| match var {
            "SCHEMA_NAME" => Some("from_env".to_owned()),
            "TIMESTAMP_TOLERANCE_SECS" => Some("60".to_owned()),
            _ => None,
        };
        let config = parsed.settings.config(env).unwrap();
        assert_eq!(config.schema, "from_flag");
        assert_eq!(
            config.timestamp_tolerance,
            std::time::Duration::from_secs(60)
        );

        let err = parse(&["--schema", "Not-Valid"])
            .unwrap()
            .settings
            .config(|_| None)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("SCHEMA_NAME (--schema) must be"), "{err}");
    }

    #[test]
    fn help_names_the_variable_and_the_default() {
        let help = help_of(&settings::SCHEMA_NAME, None);
        assert_eq!(
            help,
            "Warehouse schema name [env: SCHEMA_NAME] [default: klaviyo]"
        );
    }
}
