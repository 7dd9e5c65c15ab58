// Bayesian logistic regression on the Wisconsin breast-cancer table (python3-sklearn's copy),
// standardized features. Valid both in Stan 2.21 (rstan, which made the NUTS fixture) and in
// flowvi's model language. The ~ statements keep normalizing constants in flowvi and drop them in
// Stan; posterior means are unaffected.
data {
  int<lower=1> N;
  int<lower=1> K;
  matrix[N, K] x;
  int<lower=0, upper=1> y[N];
}
parameters {
  real alpha;
  vector[K] beta;
}
model {
  alpha ~ normal(0, 5);
  beta ~ normal(0, 1);
  y ~ bernoulli_logit(alpha + x * beta);
}
