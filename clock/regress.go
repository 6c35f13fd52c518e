package clock

import "math"

// Weighted least-squares regression of offset against local time, with the
// runs test chrony uses (regress.c) to drop old samples once the residuals
// show the line no longer fits (the oscillator's frequency has moved).

// point is one sample in the regression: x is local time and y the offset,
// both in seconds from the discipline's reference; w is the weight, Σ1/λ²
// over the samples combined into the point (see combine); r is the random
// part of its distance (see spread), the part that differs from point to
// point. Zero r means the whole distance, 1/√w.
type point struct{ x, y, w, r float64 }

// fit is the result of a regression over n points.
type fit struct {
	n        int
	xMean    float64 // weighted mean of x
	yMean    float64 // fitted offset at xMean
	slope    float64 // d offset / d local
	varUnit  float64 // variance of a point of mean weight about the line
	varSlope float64 // variance of slope
	// slopeBound is the worst-case slope error if every point's random
	// error is within 1/√w: Σ √w·|x−x̄| / Σ w·(x−x̄)².
	slopeBound float64
	// sw and sxx are Σw and Σw·(x−x̄)² with the weights as given, and s2
	// the residuals' variance for a point of weight 1 (1 when the points
	// scatter as their weights claim).
	sw, sxx, s2 float64
	// vr0, vr1 and vr2 are Σw²r², Σw²r²·(x−x̄) and Σw²r²·(x−x̄)²: the
	// fitted line's variance if each point's error has deviation r.
	vr0, vr1, vr2 float64
}

// at returns the fitted offset at x.
func (f fit) at(x float64) float64 { return f.yMean + f.slope*(x-f.xMean) }

// skew returns the frequency uncertainty: a 95% confidence half-width of
// the slope, as chrony's sourcestats computes it, but never less than the
// worst case the points' distances allow. With few points the residuals
// alone can look deceptively small; the distances cannot.
func (f fit) skew() float64 {
	return max(tCoef(f.n-2)*math.Sqrt(f.varSlope), f.slopeBound)
}

// randomError returns how far the fitted line at x may be off from the
// points' random errors: one standard deviation as the points' random
// parts claim it, or the t-scaled one the residuals show if that is larger.
// The error every point shares (the path's unknown asymmetry) is not in it.
func (f fit) randomError(x float64) float64 {
	c := f.claimedError(x)
	return max(c, tCoef(f.n-2)*math.Sqrt(f.s2)*c)
}

// claimedError returns how far the fitted line at x may be off if every
// point's error is as its random part claims: one standard deviation,
// whatever the residuals show. The part of the distance every point
// shares (half the path's minimum delay: its unknown asymmetry) is not in
// it; the bound counts it once, whole, beside this.
func (f fit) claimedError(x float64) float64 {
	v := f.vr0 / (f.sw * f.sw)
	if f.sxx > 0 {
		dx := x - f.xMean
		v += 2*dx*f.vr1/(f.sw*f.sxx) + dx*dx*f.vr2/(f.sxx*f.sxx)
	}
	return math.Sqrt(max(v, 0))
}

// regress fits a line through pts (at least 3) by weighted least squares.
func regress(pts []point) fit {
	n := len(pts)
	var sw, swx, swy float64
	for _, p := range pts {
		sw += p.w
		swx += p.w * p.x
		swy += p.w * p.y
	}
	xm, ym := swx/sw, swy/sw
	var sxx, sxy, sab, vr0, vr1, vr2 float64
	for _, p := range pts {
		dx := p.x - xm
		sxx += p.w * dx * dx
		sxy += p.w * dx * (p.y - ym)
		sab += math.Sqrt(p.w) * math.Abs(dx)
		r2 := p.r * p.r
		if p.r == 0 {
			r2 = 1 / p.w
		}
		v := p.w * p.w * r2
		vr0 += v
		vr1 += v * dx
		vr2 += v * dx * dx
	}
	f := fit{n: n, xMean: xm, yMean: ym, sw: sw, sxx: sxx, vr0: vr0, vr1: vr1, vr2: vr2}
	if sxx > 0 {
		f.slope = sxy / sxx
	}
	var ssr float64
	for _, p := range pts {
		r := p.y - f.at(p.x)
		ssr += p.w * r * r
	}
	// Normalise the weights to a mean of 1 so varUnit is in seconds².
	scale := float64(n) / sw
	if n > 2 {
		f.s2 = ssr / float64(n-2)
		f.varUnit = f.s2 * scale
	}
	if sxx > 0 {
		f.varSlope = f.varUnit / (sxx * scale)
		f.slopeBound = sab / sxx
	} else {
		f.varSlope, f.slopeBound = math.Inf(1), math.Inf(1)
	}
	return f
}

// countRuns returns the number of runs of equal sign in the residuals of
// pts about f.
func countRuns(pts []point, f fit) int {
	runs, last := 0, 0
	for _, p := range pts {
		s := 1
		if p.y-f.at(p.x) < 0 {
			s = -1
		}
		if s != last {
			runs++
			last = s
		}
	}
	return runs
}

// criticalRuns returns the fewest runs n random residuals show at the 1%
// level; fewer means the residuals are not random and the line does not fit.
func criticalRuns(n int) int {
	if n < 8 {
		return 0
	}
	// Normal approximation with as many positive as negative residuals.
	h := float64(n) / 2
	mean := 2*h*h/float64(n) + 1
	sd := math.Sqrt((mean - 1) * (mean - 2) / float64(n-1))
	return int(math.Ceil(mean - 2.33*sd))
}

// minRegressionPoints is the fewest points the runs test keeps.
const minRegressionPoints = 6

// bestStart returns the index of the oldest point to keep: the smallest
// start whose regression passes the runs test, dropping old points in
// growing steps as chrony does.
func bestStart(pts []point) int {
	n := len(pts)
	start, step := 0, 1
	for n-start > minRegressionPoints {
		sub := pts[start:]
		if countRuns(sub, regress(sub)) >= criticalRuns(len(sub)) {
			return start
		}
		start += step
		step = max(1, (n-start)/8)
	}
	return max(0, n-minRegressionPoints)
}

// tCoef returns Student's t for a two-sided 95% interval with dof degrees
// of freedom.
func tCoef(dof int) float64 {
	table := [...]float64{
		12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23,
		2.20, 2.18, 2.16, 2.14, 2.13, 2.12, 2.11, 2.10, 2.09, 2.09,
		2.08, 2.07, 2.07, 2.06, 2.06, 2.06, 2.05, 2.05, 2.05, 2.04,
	}
	switch {
	case dof < 1:
		return math.Inf(1)
	case dof <= len(table):
		return table[dof-1]
	default:
		return 1.96 + 2.4/float64(dof)
	}
}
