//! The newest rows of the stream, kept for drift checks and refits.

use std::collections::VecDeque;

/// The newest `capacity` rows of `width` features.
#[derive(Debug, Clone)]
pub struct Window {
    width: Option<usize>,
    capacity: usize,
    values: VecDeque<f64>,
}

impl Window {
    /// An empty window of `capacity` rows; `width` is taken from the first row when `None`.
    pub fn new(capacity: usize, width: Option<usize>) -> Self {
        Self {
            width,
            capacity,
            values: VecDeque::new(),
        }
    }

    /// Adds a row, dropping the oldest when full; false (and nothing added) when the row has
    /// another width or a value that is not finite.
    pub fn push(&mut self, row: &[f64]) -> bool {
        let width = *self.width.get_or_insert(row.len());
        if row.len() != width || width == 0 || !row.iter().all(|v| v.is_finite()) {
            return false;
        }
        if self.len() == self.capacity {
            self.values.drain(..width);
        }
        self.values.extend(row);
        true
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.width
            .and_then(|width| self.values.len().checked_div(width))
            .unwrap_or(0)
    }

    /// True when no row is held.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Features per row, once known.
    pub fn width(&self) -> Option<usize> {
        self.width
    }

    /// The rows, oldest first, row-major.
    pub fn data(&self) -> Vec<f64> {
        self.values.iter().copied().collect()
    }
}

/// The newest `capacity` records as they came (their bytes), to learn named features from.
#[derive(Debug, Clone)]
pub struct RecordWindow {
    capacity: usize,
    records: VecDeque<Vec<u8>>,
}

impl RecordWindow {
    /// An empty window of `capacity` records.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            records: VecDeque::new(),
        }
    }

    /// Adds a record, dropping the oldest when full.
    pub fn push(&mut self, record: Vec<u8>) {
        if self.records.len() == self.capacity {
            self.records.pop_front();
        }
        self.records.push_back(record);
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when no record is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.records.iter().map(Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_keeps_the_newest_rows_of_one_width() {
        let mut window = Window::new(3, None);
        assert!(window.push(&[1.0, 1.5]));
        assert!(!window.push(&[1.0]), "another width");
        assert!(!window.push(&[f64::NAN, 0.0]), "not finite");
        for row in 2..=4 {
            assert!(window.push(&[row as f64, 0.5]));
        }
        assert_eq!(window.len(), 3);
        assert_eq!(window.data(), [2.0, 0.5, 3.0, 0.5, 4.0, 0.5]);
    }

    #[test]
    fn the_record_window_keeps_the_newest_records() {
        let mut window = RecordWindow::new(2);
        assert!(window.is_empty());
        for record in [b"a", b"b", b"c"] {
            window.push(record.to_vec());
        }
        assert_eq!(window.len(), 2);
        assert_eq!(window.iter().collect::<Vec<_>>(), [b"b", b"c"]);
    }
}
