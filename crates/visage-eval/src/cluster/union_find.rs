//! Disjoint sets with path halving and union by size — shared by DBSCAN
//! (core components) and agglomerative clustering (cutting the dendrogram).

/// Disjoint sets over `0 .. n`, each element starting alone.
pub struct UnionFind {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl UnionFind {
    /// `n` singleton sets.
    pub fn new(n: usize) -> Self {
        UnionFind { parent: (0..n).collect(), size: vec![1; n] }
    }

    /// The representative of `i`'s set (halving the path on the way).
    pub fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    /// Joins the sets of `a` and `b`; returns false when they were one already.
    pub fn union(&mut self, a: usize, b: usize) -> bool {
        let (mut ra, mut rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        if self.size[ra] < self.size[rb] {
            std::mem::swap(&mut ra, &mut rb);
        }
        self.parent[rb] = ra;
        self.size[ra] += self.size[rb];
        true
    }

    /// Dense labels 0.. in order of first appearance.
    pub fn labels(&mut self) -> Vec<i64> {
        let n = self.parent.len();
        let mut id_of_root = vec![-1i64; n];
        let mut next = 0;
        (0..n)
            .map(|i| {
                let r = self.find(i);
                if id_of_root[r] < 0 {
                    id_of_root[r] = next;
                    next += 1;
                }
                id_of_root[r]
            })
            .collect()
    }
}
