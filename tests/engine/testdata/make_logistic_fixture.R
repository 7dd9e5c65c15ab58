# Makes the logistic-regression fixture of tests/engine/lang_logistic_test.cc, once, with
# Debian's r-cran-rstan and python3-sklearn (neither is needed to run the test):
#
#   apt-get install r-cran-rstan python3-sklearn
#   Rscript tests/engine/testdata/make_logistic_fixture.R
#
# Data: the Wisconsin breast-cancer table shipped by python3-sklearn (569 rows, 30 features,
# y = 1 for benign). Features are taken in column order, skipping any whose |correlation| with
# one already taken exceeds 0.8 (this drops near-duplicate measurements such as perimeter and
# area next to radius; 14 remain), then standardized (mean 0, sd 1). Writes
#   breast_cancer_logistic.data.json   the data, CmdStan JSON
#   breast_cancer_logistic.nuts.txt    per parameter: name, posterior mean, sd and the Monte
#                                      Carlo SE of the mean, from a long NUTS run
set.seed(20261121)
# Debian's r-cran-bh ships no headers (it depends on libboost-dev), but rstan looks for them at
# system.file("include", package = "BH"): give it a private copy of BH whose include/ is
# /usr/include, first on the library path.
bh <- file.path(tempdir(), "lib")
dir.create(file.path(bh, "BH"), recursive = TRUE)
file.copy(list.files(system.file(package = "BH"), full.names = TRUE), file.path(bh, "BH"),
          recursive = TRUE)
file.symlink("/usr/include", file.path(bh, "BH", "include"))
.libPaths(c(bh, .libPaths()))
suppressPackageStartupMessages(library(rstan))
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)))
csv <- "/usr/lib/python3/dist-packages/sklearn/datasets/data/breast_cancer.csv"
d <- read.csv(csv, header = FALSE, skip = 1)
X <- as.matrix(d[, 1:30])
y <- as.integer(d[, 31])
C <- abs(cor(X))
keep <- c()
for (j in 1:30) if (all(C[j, keep] <= 0.8)) keep <- c(keep, j)
X <- scale(X[, keep])
N <- nrow(X); K <- ncol(X)

num <- function(v) formatC(v, digits = 17, format = "g")
rows <- apply(X, 1, function(r) paste0("[", paste(num(r), collapse = ","), "]"))
json <- paste0("{\n  \"N\": ", N, ",\n  \"K\": ", K, ",\n  \"x\": [\n    ",
               paste(rows, collapse = ",\n    "), "\n  ],\n  \"y\": [",
               paste(y, collapse = ","), "]\n}\n")
writeLines(json, file.path(here, "breast_cancer_logistic.data.json"), sep = "")

fit <- stan(file.path(here, "breast_cancer_logistic.stan"),
            data = list(N = N, K = K, x = unclass(X), y = y),
            chains = 4, iter = 26000, warmup = 1000, seed = 20261121, refresh = 0)
s <- summary(fit, pars = c("alpha", "beta"))$summary
stopifnot(all(s[, "Rhat"] < 1.01))
out <- c("# name mean sd mcse_of_mean  (rstan NUTS, 4 chains x 25000 draws after 1000 warm-up)",
         sprintf("%s %s %s %s", rownames(s), num(s[, "mean"]), num(s[, "sd"]),
                 num(s[, "se_mean"])))
writeLines(out, file.path(here, "breast_cancer_logistic.nuts.txt"))
print(s[, c("mean", "sd", "se_mean", "n_eff", "Rhat")])
