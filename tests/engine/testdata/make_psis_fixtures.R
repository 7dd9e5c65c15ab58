# Makes psis_fixtures.txt: reference values from R's loo package (Debian r-cran-loo 2.5.1) for
# tests/engine/psis_test.cc, which checks flowvi's Psis() against them.
#
# Rerun from the repository root (needs R and loo: apt-get install -y r-cran-loo):
#   Rscript tests/engine/testdata/make_psis_fixtures.R
# The output (tests/engine/testdata/psis_fixtures.txt) is committed, so building and running the
# tests (CI included) never needs R. Regenerate it only when a case is added or loo changes, and
# note the loo version in the commit.
#
# File format, one case after another:
#   case <name> <S>
#   pareto_k <k>                 (loo's pareto_k; "Inf" when loo skips the fit)
#   n_eff <n>                    (1 / sum(w^2) of the normalized weights, r_eff = 1)
#   then S lines "<log_ratio> <log_weight>": the input and
#   weights(psis_obj, log = TRUE, normalize = TRUE), in input order.
# Numbers are printed with 17 significant digits so they round-trip exactly.

suppressMessages(library(loo))

out_path <- file.path("tests", "engine", "testdata", "psis_fixtures.txt")
if (!dir.exists(dirname(out_path))) {
  stop("run from the repository root: Rscript tests/engine/testdata/make_psis_fixtures.R")
}

fmt <- function(x) sprintf("%.17g", x)

# psis() rejects non-finite input (validate_ll), but the engine accepts -Inf log-ratios (draws
# with zero target density). For those, run loo's own per-column routine and object constructor
# directly, which is exactly what psis() does after validation.
run_loo <- function(r) {
  if (all(is.finite(r))) {
    return(suppressWarnings(psis(r, r_eff = 1)))
  }
  S <- length(r)
  tail_len <- loo:::n_pareto(1, S)
  res <- suppressWarnings(loo:::do_psis_i(r, tail_len))
  loo:::importance_sampling_object(
    unnormalized_log_weights = matrix(res$log_weights, ncol = 1),
    pareto_k = res$pareto_k, tail_len = tail_len, r_eff = 1, method = "psis")
}

cases <- list()
add_case <- function(name, r) {
  cases[[length(cases) + 1]] <<- list(name = name, r = r)
}

set.seed(20240611)
# Light tail: log-normal weights with small spread, k-hat well below 0.5.
add_case("good_fit", rnorm(1000, mean = 0, sd = 0.1))
# |t| with 1.5 degrees of freedom has a Pareto tail with shape 1/1.5, so k is about 0.67.
add_case("heavy_tail", log(abs(rt(4000, df = 1.5))))
# exp(r) = U^(-1.3): exactly Pareto with shape 1.3 (k > 1). Shifted so max(r) is far from 0.
add_case("very_heavy_tail", 1.3 * rexp(1000) + 40)
# Small S (tail length 20) and a large negative offset, as real log p - log q values have.
add_case("small_s100", rnorm(100, sd = 1.2) - 300)
# Draws with zero target density; loo's psis() itself refuses these (see run_loo).
r <- rnorm(500, sd = 0.8)
r[sample(500, 40)] <- -Inf
add_case("neg_inf", r)
# Rounded values: ties inside the tail and across the cutoff, so the order in which tied draws
# receive the smoothed values (loo's stable sort) matters.
add_case("ties", round(rnorm(1000, sd = 0.7), 1))
# Ties at the cutoff make the Zhang-Stephens reference quantile zero; the fit is NaN, which loo
# reports as k = Inf and leaves the tail unsmoothed.
add_case("ties_nan_fit", sample(c(rep(0, 90), seq(0.1, 1, length.out = 10))))
# All tail values equal: loo does not fit (k = Inf) and ESS = S.
add_case("constant", rep(1.5, 100))
# S = 20 gives a tail of 4 < 5 draws: no fit, k = Inf, weights only normalized.
add_case("short_s20", rnorm(20))

con <- file(out_path, open = "w")
writeLines(c(
  "# PSIS reference values from R loo 2.5.1, written by make_psis_fixtures.R; do not edit.",
  "# Format: see the header of make_psis_fixtures.R."), con)
for (cs in cases) {
  obj <- run_loo(cs$r)
  lw <- as.vector(weights(obj, log = TRUE, normalize = TRUE))
  k <- pareto_k_values(obj)
  n_eff <- obj$diagnostics$n_eff
  writeLines(sprintf("case %s %d", cs$name, length(cs$r)), con)
  writeLines(paste("pareto_k", fmt(k)), con)
  writeLines(paste("n_eff", fmt(n_eff)), con)
  writeLines(paste(fmt(cs$r), fmt(lw)), con)
  cat(sprintf("%-16s S=%5d  k=%.4f  n_eff=%.2f\n", cs$name, length(cs$r), k, n_eff))
}
close(con)
