//! `martelli plot RESULTS.json...`: redraw the charts from saved results, several overlaid.

use std::path::Path;

use martelli_results::Results;

use crate::cli::PlotArgs;
use crate::exit::UsageError;

/// Reads every results file (failing on the first bad one, before drawing anything) and draws.
pub fn plot(args: PlotArgs) -> anyhow::Result<()> {
    let runs = args
        .results
        .iter()
        .map(|p| load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let out = match &args.out {
        Some(dir) => dir.clone(),
        None => args.results[0]
            .parent()
            .map_or_else(|| ".".into(), Path::to_path_buf),
    };
    let mut staged = martelli_results::Staged::new(&out)?;
    martelli_plot::stage_charts(&runs, &mut staged, args.format.into())?;
    martelli_plot::stage_report(&runs, &mut staged, None, None)?;
    let names: Vec<String> = staged.commit()?.iter().map(|p| p.display().to_string()).collect();
    println!("wrote {}", names.join(", "));
    Ok(())
}

/// One results.json, with errors that name the file, the line and the column.
pub(crate) fn load(path: &Path) -> Result<Results, UsageError> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| UsageError(format!("cannot read {name}: {e}")))?;
    if text.trim().is_empty() {
        return Err(UsageError(format!(
            "{name}: the file is empty: expected a results.json written by `martelli run`"
        )));
    }
    let results: Results = serde_json::from_str(&text).map_err(|e| {
        UsageError(format!(
            "{name}:{}:{}: not a martelli results.json: {e}",
            e.line(),
            e.column()
        ))
    })?;
    if results.points.is_empty() {
        return Err(UsageError(format!("{name}: no points to plot")));
    }
    Ok(results)
}
