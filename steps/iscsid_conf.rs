//! iscsid.conf editing (being written).
