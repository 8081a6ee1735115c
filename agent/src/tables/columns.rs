//! Column buffers over parquet's low-level writer: a table is a list of leaf columns, each
//! filled row by row with its values and (when its path is optional or repeated) its
//! definition and repetition levels, and written out a row group at a time, so memory holds
//! one row group whatever the recording holds.

use std::io::Write;
use std::sync::Arc;

use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DataType, Int32Type, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedColumnWriter, SerializedFileWriter};
use parquet::schema::types::ColumnPath;

/// Rows per row group: big enough for engines to skip well, small enough that a table's
/// buffers stay a few MB.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// One leaf column's pending values and levels.
///
/// A leaf is one of three shapes, fixed by the schema: required (values only), optional
/// (definition level 1 when present, 0 when null) or a required list/map of required
/// elements (definition level 1 per element, 0 for an empty list; repetition level 0 for
/// a row's first element, 1 for the others).
pub struct Leaf<T: DataType> {
    values: Vec<T::T>,
    def: Vec<i16>,
    rep: Vec<i16>,
    shape: Shape,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Required,
    Optional,
    Repeated,
}

impl<T: DataType> Leaf<T> {
    pub fn required() -> Self {
        Self::with(Shape::Required)
    }
    pub fn optional() -> Self {
        Self::with(Shape::Optional)
    }
    pub fn repeated() -> Self {
        Self::with(Shape::Repeated)
    }
    fn with(shape: Shape) -> Self {
        Leaf {
            values: Vec::new(),
            def: Vec::new(),
            rep: Vec::new(),
            shape,
        }
    }

    /// A required column's value.
    pub fn push(&mut self, v: T::T) {
        debug_assert!(self.shape == Shape::Required);
        self.values.push(v);
    }

    /// An optional column's value, or null.
    pub fn push_opt(&mut self, v: Option<T::T>) {
        debug_assert!(self.shape == Shape::Optional);
        match v {
            Some(v) => {
                self.values.push(v);
                self.def.push(1);
            }
            None => self.def.push(0),
        }
    }

    /// A repeated column's elements for one row (none is an empty list).
    pub fn push_list(&mut self, items: impl IntoIterator<Item = T::T>) {
        debug_assert!(self.shape == Shape::Repeated);
        let before = self.def.len();
        for (k, v) in items.into_iter().enumerate() {
            self.values.push(v);
            self.def.push(1);
            self.rep.push(i16::from(k > 0));
        }
        if self.def.len() == before {
            self.def.push(0);
            self.rep.push(0);
        }
    }
}

/// What the file writer needs of a leaf, whatever its type.
pub trait Column {
    /// Writes the pending values into the row group's next column and empties the buffer.
    fn write(&mut self, out: SerializedColumnWriter<'_>) -> parquet::errors::Result<()>;
}

impl<T: DataType> Column for Leaf<T> {
    fn write(&mut self, mut out: SerializedColumnWriter<'_>) -> parquet::errors::Result<()> {
        let def = (self.shape != Shape::Required).then_some(&self.def[..]);
        let rep = (self.shape == Shape::Repeated).then_some(&self.rep[..]);
        out.typed::<T>().write_batch(&self.values, def, rep)?;
        self.values.clear();
        self.def.clear();
        self.rep.clear();
        out.close()
    }
}

pub type Str = Leaf<ByteArrayType>;
pub type I64 = Leaf<Int64Type>;
pub type I32 = Leaf<Int32Type>;
pub type Bool = Leaf<BoolType>;

/// A string as a parquet value.
pub fn text(s: &str) -> ByteArray {
    ByteArray::from(s.as_bytes().to_vec())
}

/// An owned string as a parquet value, without a copy.
pub fn text_owned(s: String) -> ByteArray {
    ByteArray::from(s.into_bytes())
}

/// A table's rows: its schema, and its leaves in schema order.
pub trait Rows {
    /// The Parquet message type (`message name { ... }`).
    const SCHEMA: &'static str;
    /// Integer columns whose neighbours are close (times, sequence numbers, ids handed out
    /// in order): delta-encoded, which takes them from 8 bytes a value to one or two.
    /// Dotted paths for nested leaves (`spans.list.element`).
    const DELTA: &'static [&'static str] = &[];
    fn columns(&mut self) -> Vec<&mut dyn Column>;
}

/// One table's file being written: rows are buffered in `T` and flushed a row group at a
/// time.
pub struct TableFile<W: Write + Send, T: Rows> {
    writer: SerializedFileWriter<W>,
    pub rows: T,
    pending: usize,
    pub total: u64,
}

impl<W: Write + Send, T: Rows> TableFile<W, T> {
    pub fn new(out: W, rows: T, metadata: Vec<KeyValue>) -> parquet::errors::Result<Self> {
        let schema = Arc::new(parquet::schema::parser::parse_message_type(T::SCHEMA)?);
        let mut props = WriterProperties::builder();
        for col in T::DELTA {
            let path = ColumnPath::from(col.split('.').map(String::from).collect::<Vec<_>>());
            props = props
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
        }
        let props = props
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_created_by(format!("flightrec {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(metadata))
            .build();
        Ok(TableFile {
            writer: SerializedFileWriter::new(out, schema, Arc::new(props))?,
            rows,
            pending: 0,
            total: 0,
        })
    }

    /// Counts a row the caller pushed into every column, flushing a full row group.
    pub fn row_done(&mut self) -> parquet::errors::Result<()> {
        self.pending += 1;
        self.total += 1;
        if self.pending >= ROW_GROUP_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> parquet::errors::Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let mut group = self.writer.next_row_group()?;
        for col in self.rows.columns() {
            let out = group.next_column()?.ok_or_else(|| {
                parquet::errors::ParquetError::General("more columns than the schema".into())
            })?;
            col.write(out)?;
        }
        group.close()?;
        self.pending = 0;
        Ok(())
    }

    /// Writes what is pending and the footer; returns the rows written.
    pub fn finish(mut self) -> parquet::errors::Result<u64> {
        self.flush()?;
        self.writer.close()?;
        Ok(self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor;

    struct Pairs {
        name: Str,
        n: I64,
        tags: Str,
    }

    impl Rows for Pairs {
        const SCHEMA: &'static str = "message pairs {
            required binary name (STRING);
            optional int64 n;
            required group tags (LIST) { repeated group list { required binary element (STRING); } }
        }";
        fn columns(&mut self) -> Vec<&mut dyn Column> {
            vec![&mut self.name, &mut self.n, &mut self.tags]
        }
    }

    #[test]
    fn optional_and_list_levels_read_back_across_row_groups() {
        let rows = Pairs {
            name: Str::required(),
            n: I64::optional(),
            tags: Str::repeated(),
        };
        let mut buf = Vec::new();
        let mut t = TableFile::new(&mut buf, rows, vec![]).unwrap();
        let count = ROW_GROUP_ROWS + 3;
        for i in 0..count {
            t.rows.name.push(text(&format!("r{i}")));
            t.rows.n.push_opt((i % 2 == 0).then_some(i as i64));
            t.rows
                .tags
                .push_list((0..i % 3).map(|k| text(&format!("t{k}"))));
            t.row_done().unwrap();
        }
        assert_eq!(t.finish().unwrap(), count as u64);
        let reader = SerializedFileReader::new(bytes::Bytes::from(buf)).unwrap();
        assert_eq!(reader.metadata().num_row_groups(), 2);
        let rows: Vec<_> = reader
            .get_row_iter(None)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rows.len(), count);
        // Row 65 537, in the second row group: odd (null), two tags.
        let late = &rows[count - 2];
        assert_eq!(late.get_string(0).unwrap(), &format!("r{}", count - 2));
        assert!(late.get_long(1).is_err(), "null");
        assert_eq!(late.get_list(2).unwrap().len(), 2);
        assert_eq!(rows[count - 1].get_long(1).unwrap(), count as i64 - 1);
        assert_eq!(rows[4].get_long(1).unwrap(), 4);
        assert_eq!(rows[3].get_list(2).unwrap().len(), 0);
    }
}
