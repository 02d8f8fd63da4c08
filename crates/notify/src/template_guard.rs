//! What a tenant's template may do: a subset of minijinja whose values cannot grow
//! without bound while it renders.
//!
//! Fuel bounds a render's steps and [`super::templates::MAX_OUTPUT_BYTES`] its output,
//! but not the values built on the way: `{% set a = a ~ a %}` thirty times over (or
//! the same through `+`, `*`, a macro, a `{% set %}` block, a separator of `join`)
//! doubles a value per step, and one template uploaded by one tenant's staff would
//! exhaust the memory of the process every tenant shares. So a template may print,
//! test and loop over the values it is given, name only literal values, and pass a
//! value through at most [`MAX_FILTER_DEPTH`] filters, each from [`FILTERS`] (each
//! makes its input at most a few times larger; `join` and `range`, which multiply
//! sizes, are bounded where the environment is built). Every intermediate value is
//! then at most a small multiple of the notice's data or the template itself.
//!
//! The check walks the syntax tree (minijinja's `unstable_machinery` parser, pinned
//! by `Cargo.lock`); what it refuses, it names with its line.

use minijinja::machinery::ast::{BinOpKind, CallArg, CallType, Expr, Stmt};
use minijinja::machinery::{WhitespaceConfig, parse};
use minijinja::syntax::SyntaxConfig;

/// Filters a value may pass through on its way to the output, one after another.
pub const MAX_FILTER_DEPTH: usize = 2;

/// The filters a tenant template may use: Assent's own and minijinja's that neither
/// repeat a value nor combine two values into a larger one.
pub const FILTERS: &[&str] = &[
    // Assent's.
    "plural",
    "date",
    "datetime",
    "nl2br",
    "consent_action",
    // minijinja's.
    "abs",
    "attr",
    "bool",
    "capitalize",
    "count",
    "d",
    "default",
    "dictsort",
    "e",
    "escape",
    "first",
    "float",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lower",
    "max",
    "min",
    "reverse",
    "round",
    "safe",
    "sort",
    "title",
    "trim",
    "truncate",
    "unique",
    "upper",
    "urlencode",
    "wordcount",
];

/// Filters whose arguments are woven into the output as many times as the input has
/// items: their arguments must be literals.
const LITERAL_ARGUMENTS: &[&str] = &["join"];

/// Why a template was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub line: usize,
    pub message: String,
}

/// Checks a template's source against the rules above. A syntax error is left to the
/// caller's compile step (it reports it better); here it passes.
pub fn check(source: &str, name: &str) -> Result<(), Refused> {
    // `SyntaxConfig` is a unit struct without minijinja's `custom_syntax` feature.
    let Ok(tree) = parse(source, name, SyntaxConfig, WhitespaceConfig::default()) else {
        return Ok(());
    };
    stmt(&tree)
}

fn refuse<T>(line: usize, message: impl Into<String>) -> Result<T, Refused> {
    Err(Refused {
        line,
        message: message.into(),
    })
}

fn stmts(body: &[Stmt<'_>]) -> Result<(), Refused> {
    body.iter().try_for_each(stmt)
}

fn stmt(s: &Stmt<'_>) -> Result<(), Refused> {
    match s {
        Stmt::Template(t) => stmts(&t.children),
        Stmt::EmitRaw(_) => Ok(()),
        Stmt::EmitExpr(e) => expr(&e.expr, 0),
        Stmt::IfCond(c) => {
            expr(&c.expr, 0)?;
            stmts(&c.true_body)?;
            stmts(&c.false_body)
        }
        Stmt::ForLoop(f) => {
            let line = f.span().start_line as usize;
            if f.recursive {
                return refuse(line, "recursive loops are not available");
            }
            loop_target(&f.target, line)?;
            expr(&f.iter, 0)?;
            if let Some(cond) = &f.filter_expr {
                expr(cond, 0)?;
            }
            stmts(&f.body)?;
            stmts(&f.else_body)
        }
        Stmt::Set(set) => {
            let line = set.span().start_line as usize;
            if !matches!(set.target, Expr::Var(_)) {
                return refuse(line, "`{% set %}` may only name a variable");
            }
            expr(&set.expr, 0)?;
            if !literal(&set.expr) {
                return refuse(
                    line,
                    "`{% set %}` may only name a literal value (text, a number, a list or a map of them)",
                );
            }
            Ok(())
        }
        Stmt::AutoEscape(a) => {
            if !literal(&a.enabled) {
                return refuse(
                    a.span().start_line as usize,
                    "`{% autoescape %}` takes a literal",
                );
            }
            stmts(&a.body)
        }
        Stmt::SetBlock(b) => refuse(
            line_of(b.span()),
            "`{% set %}…{% endset %}` blocks are not available",
        ),
        Stmt::FilterBlock(b) => {
            refuse(line_of(b.span()), "`{% filter %}` blocks are not available")
        }
        Stmt::WithBlock(b) => refuse(line_of(b.span()), "`{% with %}` blocks are not available"),
        Stmt::Macro(m) => refuse(line_of(m.span()), "macros are not available"),
        Stmt::CallBlock(c) => refuse(line_of(c.span()), "`{% call %}` blocks are not available"),
        Stmt::Do(d) => refuse(line_of(d.span()), "`{% do %}` is not available"),
        Stmt::Block(b) => refuse(line_of(b.span()), "`{% block %}` is not available"),
        Stmt::Import(i) => refuse(line_of(i.span()), "imports are not available"),
        Stmt::FromImport(i) => refuse(line_of(i.span()), "imports are not available"),
        Stmt::Extends(e) => refuse(line_of(e.span()), "`{% extends %}` is not available"),
        Stmt::Include(i) => refuse(line_of(i.span()), "`{% include %}` is not available"),
    }
}

fn line_of(span: minijinja::machinery::Span) -> usize {
    span.start_line as usize
}

fn loop_target(target: &Expr<'_>, line: usize) -> Result<(), Refused> {
    match target {
        Expr::Var(_) => Ok(()),
        Expr::List(l) if l.items.iter().all(|i| matches!(i, Expr::Var(_))) => Ok(()),
        _ => refuse(line, "a loop may only name variables"),
    }
}

/// A literal: text, a number, a boolean, none, or a list or map of literals. (Not
/// `Expr::as_const`, which would evaluate `'x' * 100000000` to find out.)
fn literal(e: &Expr<'_>) -> bool {
    match e {
        Expr::Const(_) => true,
        Expr::UnaryOp(u) => matches!(u.expr, Expr::Const(_)),
        Expr::List(l) => l.items.iter().all(literal),
        Expr::Map(m) => m.keys.iter().all(literal) && m.values.iter().all(literal),
        _ => false,
    }
}

/// An expression, `depth` filters deep in the expression around it.
fn expr(e: &Expr<'_>, depth: usize) -> Result<(), Refused> {
    let line = e.span().start_line as usize;
    match e {
        Expr::Var(_) | Expr::Const(_) => Ok(()),
        Expr::List(_) | Expr::Map(_) => {
            if literal(e) {
                Ok(())
            } else {
                refuse(line, "lists and maps may hold only literal values")
            }
        }
        Expr::GetAttr(g) => expr(&g.expr, depth),
        Expr::GetItem(g) => {
            expr(&g.expr, depth)?;
            expr(&g.subscript_expr, depth)
        }
        Expr::Slice(s) => {
            expr(&s.expr, depth)?;
            for part in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                expr(part, depth)?;
            }
            Ok(())
        }
        Expr::UnaryOp(u) => expr(&u.expr, depth),
        Expr::BinOp(b) => {
            if matches!(
                b.op,
                BinOpKind::Add | BinOpKind::Mul | BinOpKind::Pow | BinOpKind::Concat
            ) {
                return refuse(
                    line,
                    "`~`, `+`, `*` and `**` are not available: write values next to each other, e.g. `{{ a }} {{ b }}`",
                );
            }
            expr(&b.left, depth)?;
            expr(&b.right, depth)
        }
        Expr::Compare(c) => {
            expr(&c.expr, depth)?;
            c.ops.iter().try_for_each(|op| expr(&op.expr, depth))
        }
        Expr::IfExpr(i) => {
            expr(&i.test_expr, depth)?;
            expr(&i.true_expr, depth)?;
            i.false_expr.iter().try_for_each(|f| expr(f, depth))
        }
        Expr::Test(t) => {
            expr(&t.expr, depth)?;
            args(&t.args, depth, false, line)
        }
        Expr::Filter(f) => {
            if !FILTERS.contains(&f.name) {
                return refuse(
                    line,
                    format!(
                        "the filter `{}` is not available; these are: {}",
                        f.name,
                        FILTERS.join(", ")
                    ),
                );
            }
            let depth = depth + 1;
            if depth > MAX_FILTER_DEPTH {
                return refuse(
                    line,
                    format!("a value may pass through at most {MAX_FILTER_DEPTH} filters"),
                );
            }
            if let Some(input) = &f.expr {
                expr(input, depth)?;
            }
            args(&f.args, depth, LITERAL_ARGUMENTS.contains(&f.name), line)
        }
        Expr::Call(c) => match c.identify_call() {
            CallType::Function("range") => args(&c.args, depth, false, line),
            _ => refuse(line, "only `range(…)` may be called"),
        },
    }
}

fn args(
    list: &[CallArg<'_>],
    depth: usize,
    literal_only: bool,
    line: usize,
) -> Result<(), Refused> {
    for arg in list {
        let value = match arg {
            CallArg::Pos(e) | CallArg::Kwarg(_, e) => e,
            CallArg::PosSplat(_) | CallArg::KwargSplat(_) => {
                return refuse(line, "`*args` and `**kwargs` are not available");
            }
        };
        if literal_only && !literal(value) {
            return refuse(line, "this filter takes only literal arguments");
        }
        expr(value, depth)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(source: &str) -> String {
        check(source, "t.txt").expect_err(source).message
    }

    #[test]
    fn what_builtins_and_ordinary_templates_do_passes() {
        for ok in [
            "Hello{% if recipient.name %}, {{ recipient.name }}{% endif %}!",
            "{% set steps = {\"a\": \"one\", \"b\": \"two\"} %}{{ steps[data.step] }}",
            "{% for s in survey.scores %}{{ s.url }} {{ loop.index }}{% endfor %}",
            "{% for i in range(3) %}{{ i }}{% else %}none{% endfor %}",
            "{{ data.items | join(', ') | upper }}",
            "{{ days_left | plural('день', 'дня', 'дней') }} {{ data.at | datetime }}",
            "{{ recipient.name | default(tenant.name) }}",
            "{% if data.kind in ['a', 'b'] and not data.x is defined %}y{% endif %}",
            "{{ data.text | truncate(20) }} {{ -1 }} {{ data.n - 1 }}",
        ] {
            assert_eq!(check(ok, "t.txt"), Ok(()), "{ok}");
        }
    }

    #[test]
    fn every_way_to_grow_a_value_is_refused_with_its_line() {
        for (bad, says) in [
            ("{% set a = 'x' %}{% set a = a ~ a %}", "`~`"),
            ("{{ data.x + data.x }}", "`+`"),
            ("{{ 'x' * 100000000 }}", "`*`"),
            ("{{ 2 ** 64 }}", "`**`"),
            ("{% set a = data.x %}", "literal"),
            ("{% set a %}{{ x }}{{ x }}{% endset %}", "blocks"),
            (
                "{% macro m(x) %}{{ x }}{{ x }}{% endmacro %}{{ m(m(1)) }}",
                "macros",
            ),
            ("{% filter upper %}x{% endfilter %}", "filter"),
            ("{% with a = data.x %}{{ a }}{% endwith %}", "with"),
            ("{{ [data.x, data.x] | join }}", "literal"),
            ("{{ data.list | join(data.x) }}", "literal arguments"),
            ("{{ data.x | replace('a', data.x) }}", "`replace`"),
            ("{{ data.x | e | upper | e }}", "at most 2"),
            ("{{ namespace() }}", "range"),
            ("{{ loop.cycle('a', 'b') }}", "range"),
            ("{{ data.f(*data.args) }}", "range"),
            ("{% for a in x recursive %}{% endfor %}", "recursive"),
        ] {
            let message = refused(bad);
            assert!(message.contains(says), "{bad}: {message}");
        }
        let err = check("line one\n\n{{ a ~ b }}", "t.txt").unwrap_err();
        assert_eq!(err.line, 3);
    }
}
