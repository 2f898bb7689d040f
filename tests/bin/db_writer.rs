//! `db-writer DB ROOM COUNT`: another process writing the chatroom database
//! while the REST component serves it. Each message is written in its own
//! `BEGIN IMMEDIATE` transaction that holds the write lock for a moment, to
//! make the two processes contend for the lock. Prints how many it wrote.

use std::time::Duration;

use chatroom_core::{MessageDraft, insert_message};
use chatroom_dbfile::open_file;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, room, count] = args.as_slice() else {
        return Err("usage: db-writer DB ROOM COUNT".into());
    };
    let room: i64 = room.parse()?;
    let count: usize = count.parse()?;
    let conn = open_file(db.as_ref())?;
    for i in 0..count {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let draft = MessageDraft::from_fields(Some("writer"), Some(&format!("w{i}")))?;
        insert_message(&conn, room, &draft)?;
        std::thread::sleep(Duration::from_millis(2));
        conn.execute_batch("COMMIT")?;
    }
    println!("{count}");
    Ok(())
}
