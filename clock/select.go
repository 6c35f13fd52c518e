package clock

import "sort"

// interval is one server's claim: UTC minus local lies in [mid-half, mid+half].
type interval struct {
	mid, half float64
}

// selection is the outcome of the intersection sweep.
type selection struct {
	count    int     // most intervals sharing a point
	lo, hi   float64 // the region they share
	survivor []bool  // per input: overlaps the region
}

// intersect runs Marzullo's sweep over the intervals: it finds the region
// covered by the most intervals and marks the intervals overlapping it.
func intersect(iv []interval) selection {
	type edge struct {
		at    float64
		delta int
	}
	edges := make([]edge, 0, 2*len(iv))
	for _, v := range iv {
		edges = append(edges, edge{v.mid - v.half, +1}, edge{v.mid + v.half, -1})
	}
	// Starts before ends at the same point, so touching intervals agree.
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at != edges[j].at {
			return edges[i].at < edges[j].at
		}
		return edges[i].delta > edges[j].delta
	})
	var sel selection
	n := 0
	for i, e := range edges {
		n += e.delta
		if n > sel.count {
			sel.count = n
			sel.lo = e.at
			sel.hi = edges[i+1].at // an end always follows the deepest start
		}
	}
	sel.survivor = make([]bool, len(iv))
	for i, v := range iv {
		sel.survivor[i] = v.mid-v.half <= sel.hi && v.mid+v.half >= sel.lo
	}
	return sel
}

// agreed reports whether count intervals out of usable form a majority, and
// at least two when two or more servers are configured.
func agreed(count, usable, configured int) bool {
	need := 1
	if configured >= 2 {
		need = 2
	}
	return count >= need && 2*count > usable
}
