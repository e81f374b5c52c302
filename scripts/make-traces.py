#!/usr/bin/python3
"""Writes the example traces of `kiln simulate` (examples/traces/).

  month-workload.csv   30 days of step arrivals (arrival_s,environment,tiles),
                       starting on a Monday at 00:00 UTC:
                       - weekdays 07:00-19:00: interactive ingests, a Poisson
                         stream whose rate follows the working day (peaks of
                         ~80 an hour at 10-12 and 14-16, a lunch dip, quiet
                         edges), a trickle until 23:00; 75% production, 25%
                         staging; sizes log-normal, median 4,000 tiles
                         (sigma 1.1, 100 to 250,000 tiles)
                       - every night at 01:00: a batch of large ingests
                         submitted over 10 minutes by a scheduler (30 on
                         weekdays, 10 at weekends), environment "batch",
                         log-normal around 50,000 tiles (sigma 0.5)
                       - weekends otherwise quiet: interactive at 5% of the
                         weekday peak rate, 09:00-20:00
  spot-month.csv       hourly spot market (t_s,price_per_hour,
                       interruptions_per_node_hour): a random walk between 30%
                       and 40% of the 0.40 on-demand price, and three spikes
                       of a few hours to 85-95% of on-demand, when
                       interruptions are ten times likelier (0.2 instead of
                       0.02 per node-hour).

Deterministic (fixed seeds): running it again writes the same bytes.

    /usr/bin/python3 scripts/make-traces.py [--out DIR] [--scale F]

--scale multiplies every arrival rate and batch size (the shape stays):
bench/simulate_bench.py uses it for the 100,000-step month.
"""

import argparse
import math
import os
import random

DAY = 86400
HOUR = 3600
ON_DEMAND = 0.40

# Share of the peak interactive rate by hour of a weekday.
WEEKDAY_PROFILE = {7: 0.3, 8: 0.6, 9: 0.9, 10: 1.0, 11: 1.0, 12: 0.6, 13: 0.8, 14: 1.0,
                   15: 1.0, 16: 0.8, 17: 0.5, 18: 0.25, 19: 0.05, 20: 0.05, 21: 0.05, 22: 0.05}
PEAK_PER_HOUR = 80
WEEKEND_SHARE = 0.05
BATCH_WEEKDAY, BATCH_WEEKEND = 30, 10


def lognormal(rng, median, sigma, lo, hi):
    return int(min(hi, max(lo, rng.lognormvariate(math.log(median), sigma))))


def poisson_hour(rng, start, per_hour):
    """Arrival times of a Poisson stream of `per_hour` within [start, start + 1 h)."""
    out = []
    if per_hour <= 0:
        return out
    t = start
    while True:
        t += rng.expovariate(per_hour / HOUR)
        if t >= start + HOUR:
            return out
        out.append(t)


def workload(rng, scale):
    rows = []
    for day in range(30):
        weekday = day % 7 < 5
        base = day * DAY
        # The nightly batch: a scheduler submits it at 01:00 over 10 minutes.
        for _ in range(round((BATCH_WEEKDAY if weekday else BATCH_WEEKEND) * scale)):
            t = base + HOUR + rng.uniform(0, 600)
            rows.append((t, "batch", lognormal(rng, 50000, 0.5, 5000, 400000)))
        # Interactive ingests.
        for hour in range(24):
            if weekday:
                share = WEEKDAY_PROFILE.get(hour, 0)
            else:
                share = WEEKEND_SHARE if 9 <= hour < 20 else 0
            for t in poisson_hour(rng, base + hour * HOUR, PEAK_PER_HOUR * share * scale):
                env = "production" if rng.random() < 0.75 else "staging"
                rows.append((t, env, lognormal(rng, 4000, 1.1, 100, 250000)))
    rows.sort()
    return rows


def spot(rng):
    rows = []
    share = 0.33
    # (start, hours) of the price spikes: a Friday afternoon, a Tuesday
    # morning, a Monday night.
    spikes = [(4 * DAY + 14 * HOUR, 5), (8 * DAY + 9 * HOUR, 3), (21 * DAY + 22 * HOUR, 6)]
    for h in range(30 * 24 + 1):
        t = h * HOUR
        share = min(0.40, max(0.30, share + rng.gauss(0, 0.008)))
        price, rate = ON_DEMAND * share, 0.02
        for start, hours in spikes:
            if start <= t < start + hours * HOUR:
                price, rate = ON_DEMAND * rng.uniform(0.85, 0.95), 0.2
        rows.append((t, price, rate))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "..", "examples", "traces"))
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply arrival rates and batch sizes (default 1)")
    ap.add_argument("--name", default="month-workload.csv", help="workload file name")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows = workload(random.Random(20261124), args.scale)
    with open(os.path.join(args.out, args.name), "w", encoding="utf-8") as f:
        f.write("arrival_s,environment,tiles\n")
        for t, env, tiles in rows:
            f.write("%.1f,%s,%d\n" % (t, env, tiles))
    with open(os.path.join(args.out, "spot-month.csv"), "w", encoding="utf-8") as f:
        f.write("t_s,price_per_hour,interruptions_per_node_hour\n")
        for t, p, rate in spot(random.Random(20261125)):
            f.write("%d,%.4f,%.3f\n" % (t, p, rate))
    print("%s: %d steps" % (os.path.join(args.out, args.name), len(rows)))


if __name__ == "__main__":
    main()
