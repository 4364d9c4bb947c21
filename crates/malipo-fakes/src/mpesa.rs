//! A fake of Safaricom's M-Pesa Daraja API (being written).
