//! A fake of the MTN MoMo Open API (being written).
