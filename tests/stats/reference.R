# Reference values for tests/stats, computed with base R only.
# Run:  Rscript tests/stats/reference.R
# Each line is "name = value(s)"; the Python tests paste these numbers with the R call named.
options(digits = 15)
out <- function(name, ...) cat(name, "=", sprintf("%.15g", c(...)), "\n")

## Proportions: Wilson (prop.test without correction, one sample) and Clopper-Pearson (binom.test)
for (case in list(c(0, 10), c(7, 10), c(10, 10), c(45, 500), c(1, 3))) {
  x <- case[1]; n <- case[2]
  out(sprintf("wilson_%d_%d", x, n), suppressWarnings(prop.test(x, n, correct = FALSE))$conf.int)
  out(sprintf("clopper_%d_%d", x, n), binom.test(x, n)$conf.int)
}

## Two-proportion z-test: prop.test(correct = FALSE); Wald CI of the difference by hand
ztest <- function(xb, nb, xt, nt) {
  pb <- xb / nb; pt <- xt / nt
  se <- sqrt(pb * (1 - pb) / nb + pt * (1 - pt) / nt)
  p <- prop.test(c(xt, xb), c(nt, nb), correct = FALSE)$p.value
  out(sprintf("ztest_%d_%d_%d_%d", xb, nb, xt, nt), p, pt - pb - qnorm(0.975) * se, pt - pb + qnorm(0.975) * se)
}
ztest(200, 2000, 250, 2000)
ztest(100, 1000, 125, 1000)
ztest(30, 400, 22, 380)

## N-1 two-proportion test: Pearson chi-square (chisq.test, correct = FALSE) times (N-1)/N
nm1 <- function(xb, nb, xt, nt) {
  tab <- matrix(c(xt, nt - xt, xb, nb - xb), nrow = 2, byrow = TRUE)
  N <- nb + nt
  stat <- suppressWarnings(chisq.test(tab, correct = FALSE)$statistic) * (N - 1) / N
  out(sprintf("nm1_%d_%d_%d_%d", xb, nb, xt, nt), pchisq(stat, 1, lower.tail = FALSE))
}
nm1(3, 12, 9, 13)
nm1(11, 12, 5, 10)
nm1(2, 20, 7, 20)

## Fisher exact, two-sided: fisher.test
fe <- function(xb, nb, xt, nt) {
  tab <- matrix(c(xt, nt - xt, xb, nb - xb), nrow = 2, byrow = TRUE)
  out(sprintf("fisher_%d_%d_%d_%d", xb, nb, xt, nt), fisher.test(tab)$p.value)
}
fe(0, 8, 4, 9)
fe(1, 5, 5, 6)
fe(3, 12, 9, 13)

## Means: t.test
yb <- c(12.1, 0, 3.5, 7.25, 0, 19.9, 4.4, 8.8, 0, 2.2, 15.0, 6.1)
yt <- c(9.9, 14.2, 0, 22.5, 11.0, 3.3, 0, 17.7, 8.8, 12.4, 5.5, 0, 30.1, 7.7)
tt <- t.test(yt, yb)
out("welch", tt$p.value, tt$conf.int, tt$parameter, tt$statistic)
out("mean_ci_yb", t.test(yb)$conf.int)

## Task times: geometric mean, Welch on logs, paired t on logs
tb <- c(34, 56, 41, 120, 66, 39, 48, 95, 52, 71)
ttm <- c(28, 40, 33, 61, 45, 30, 37, 88, 29, 50, 42)
g <- t.test(log(tb))
out("geo_tb", exp(mean(log(tb))), exp(g$conf.int))
d <- t.test(log(ttm), log(tb))
out("dur_welch", d$p.value, exp(d$conf.int), exp(mean(log(ttm)) - mean(log(tb))))
pa <- c(30, 50, 38, 100, 60, 35, 47, 80, 45, 66)
pd <- t.test(log(pa), log(tb), paired = TRUE)
out("dur_paired", pd$p.value, exp(pd$conf.int), exp(pd$estimate))

## McNemar: exact = binom.test on discordant pairs; mid-p by its definition (Fagerland 2013)
mc <- function(b, c) {
  m <- b + c; k <- min(b, c)
  out(sprintf("mcnemar_%d_%d", b, c), binom.test(c, m)$p.value,
      min(1, 2 * (pbinom(k, m, 0.5) - 0.5 * dbinom(k, m, 0.5))))
}
mc(1, 7)
mc(5, 12)
mc(4, 4)

## SRM: chisq.test goodness of fit
out("srm_2", chisq.test(c(5050, 4950), p = c(0.5, 0.5))$p.value)
out("srm_3", chisq.test(c(3400, 3300, 3000), p = c(0.34, 0.33, 0.33))$p.value)
out("srm_bad", chisq.test(c(5200, 4800), p = c(0.5, 0.5))$p.value)

## Multiple testing: p.adjust
pv <- c(0.01, 0.04, 0.03, 0.005, 0.5, 0.2)
out("holm", p.adjust(pv, "holm"))
out("bh", p.adjust(pv, "BH"))

## Power: power.prop.test and power.t.test (strict = FALSE, the default)
out("pp_20_25", power.prop.test(p1 = 0.20, p2 = 0.25, power = 0.8, tol = 1e-12)$n)
out("pp_10_12", power.prop.test(p1 = 0.10, p2 = 0.12, power = 0.8, tol = 1e-12)$n)
out("pp_10_12_k3", power.prop.test(p1 = 0.10, p2 = 0.12, power = 0.8, sig.level = 0.025, tol = 1e-12)$n)
out("pp_mde_1000", power.prop.test(n = 1000, p1 = 0.10, power = 0.8, tol = 1e-12)$p2 - 0.10)
out("pt_05", power.t.test(delta = 0.5, sd = 1, power = 0.8, tol = 1e-12)$n)
out("pt_3_20", power.t.test(delta = 3, sd = 20, power = 0.9, sig.level = 0.01, tol = 1e-12)$n)
out("pt_mde", power.t.test(n = 100, sd = 2, power = 0.8, tol = 1e-12)$delta)

## CUPED from raw vectors: theta on pooled data, Welch t-test on adjusted values
xb <- c(10, 12, 8, 15, 9, 11, 14, 7, 13, 10)
yb2 <- c(11, 14, 8, 17, 10, 12, 15, 9, 13, 12)
xt <- c(9, 13, 11, 16, 8, 12, 10, 14, 7, 12, 11)
yt2 <- c(11, 15, 13, 19, 9, 14, 12, 17, 8, 14, 13)
theta <- cov(c(xb, xt), c(yb2, yt2)) / var(c(xb, xt))
xbar <- mean(c(xb, xt))
ab <- yb2 - theta * (xb - xbar); at <- yt2 - theta * (xt - xbar)
cu <- t.test(at, ab)
out("cuped", theta, cu$p.value, cu$conf.int, mean(ab), mean(at))
out("cuped_raw", t.test(yt2, yb2)$p.value)

## Bayes: expected loss by numerical integration of max(-d, 0) under N(m, s^2)
m <- 0.012; s <- 0.008
out("bayes", pnorm(m / s),
    integrate(function(d) pmax(-d, 0) * dnorm(d, m, s), -Inf, Inf, rel.tol = 1e-12)$value,
    integrate(function(d) pmax(d, 0) * dnorm(d, m, s), -Inf, Inf, rel.tol = 1e-12)$value)

## Sequential: the always-valid CI ends are where the mixture LR equals 1/alpha (uniroot)
th <- 0.02; V <- 1e-4; tau2 <- 3e-4; a <- 0.05
lr <- function(t0) sqrt(V / (V + tau2)) * exp(tau2 * (th - t0)^2 / (2 * V * (V + tau2)))
lo <- uniroot(function(t0) lr(t0) - 1 / a, c(th - 0.2, th), tol = 1e-14)$root
hi <- uniroot(function(t0) lr(t0) - 1 / a, c(th, th + 0.2), tol = 1e-14)$root
out("msprt", 1 / lr(0), lo, hi)

## NPS difference of two designs. Independent samples, adjusted-Wald (Rocks 2016): per design
## p+ = (promoters + 3/4) / (n + 3), p- = (detractors + 3/4) / (n + 3), variance
## (p+ + p- - (p+ - p-)^2) / (n + 3); SE = sqrt(var1 + var2); z-test and interval around the
## adjusted difference; the effect reported is the plain difference of the scores (NPS points).
## Paired (same participants): codes promoter +1, passive 0, detractor -1; R's paired t.test.
code <- function(s) ifelse(s >= 9, 1, ifelse(s <= 6, -1, 0))
adjusted <- function(s) {
  n <- length(s) + 3; pp <- (sum(s >= 9) + 0.75) / n; pd <- (sum(s <= 6) + 0.75) / n
  c(pp - pd, (pp + pd - (pp - pd)^2) / n)
}
nps_diff <- function(name, a, b) {
  raw <- mean(code(b)) - mean(code(a)); A <- adjusted(a); B <- adjusted(b)
  se <- sqrt(A[2] + B[2]); centre <- B[1] - A[1]
  out(name, 100 * raw, 100 * se, 2 * pnorm(-abs(centre / se)),
      100 * (centre - qnorm(0.975) * se), 100 * (centre + qnorm(0.975) * se))
}
nps_a <- c(rep(10, 7), rep(9, 5), rep(8, 10), rep(7, 8), rep(5, 6), rep(2, 4))   # 12 / 18 / 10
nps_b <- c(rep(10, 15), rep(9, 10), rep(8, 9), rep(7, 6), rep(6, 5), rep(0, 3))  # 25 / 15 / 8
nps_diff("nps_diff", nps_a, nps_b)
nps_diff("nps_diff_all_promoters", rep(10, 4), rep(9, 6))  # 4 / 0 / 0 vs 6 / 0 / 0
pa <- c(10, 9, 6, 7, 3, 8, 10, 5, 9, 2, 8, 7)
pb <- c(10, 10, 8, 9, 6, 9, 9, 7, 10, 6, 10, 8)
tt <- t.test(code(pb), code(pa), paired = TRUE)
out("nps_paired", 100 * tt$estimate, 100 * tt$stderr, tt$p.value, 100 * tt$conf.int)

## Quantiles: type 1, the inverse of the empirical distribution function (abtest.stats.quantiles,
## PostgreSQL's percentile_disc); 0.7 * 10 is the case R's fuzz decides (rank 7, not 8)
lcp <- c(2310, 1830, 4120, 990, 2750, 1460, 3300, 2050, 1720, 5600)
for (p in c(0.1, 0.5, 0.7, 0.75, 0.9, 0.95)) out(sprintf("quantile1_%g", p), quantile(lcp, p, type = 1, names = FALSE))
## A share with one value per unit: the Wald interval
x <- 37; n <- 52; p <- x / n
out("wald_37_52", p - qnorm(0.975) * sqrt(p * (1 - p) / n), p + qnorm(0.975) * sqrt(p * (1 - p) / n))

# ---- surveys (tests/stats/test_survey_stats.py) ----
r <- prop.test(c(120, 150), c(300, 310), correct = FALSE); cat("equal rates, 2:", r$statistic, r$parameter, r$p.value, "\n")
r <- prop.test(c(40, 52, 61), c(100, 110, 105), correct = FALSE); cat("equal rates, 3:", r$statistic, r$parameter, r$p.value, "\n")
r <- prop.test(37, 52, correct = FALSE); cat("CSAT Wilson 37/52:", r$conf.int, "\n")
x <- rep(1:7, c(2, 3, 5, 9, 12, 8, 4)); r <- t.test(x); cat("CES mean:", mean(x), r$conf.int, "\n")
y <- rep(1:7, c(1, 2, 4, 7, 11, 12, 9)); r <- t.test(y, x); cat("CES Welch:", mean(y) - mean(x), r$conf.int, r$p.value, "\n")
