//! Just enough STUN (RFC 8489) to route a datagram: the local ICE username fragment of a
//! connectivity check, read from its USERNAME attribute (`<receiver's ufrag>:<sender's ufrag>`,
//! RFC 8445 §7.2.2). Nothing here trusts the datagram: every length is checked.

const HEADER_LEN: usize = 20;
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const BINDING_REQUEST: u16 = 0x0001;
const USERNAME: u16 = 0x0006;

/// The ufrag a STUN Binding request is addressed to, or `None` for anything else (media,
/// DTLS, other STUN messages, garbage).
pub fn binding_request_ufrag(datagram: &[u8]) -> Option<&str> {
    let header = datagram.get(..HEADER_LEN)?;
    if u16::from_be_bytes([header[0], header[1]]) != BINDING_REQUEST || header[4..8] != MAGIC_COOKIE {
        return None;
    }
    let body_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let mut attributes = datagram.get(HEADER_LEN..HEADER_LEN + body_len)?;
    while attributes.len() >= 4 {
        let kind = u16::from_be_bytes([attributes[0], attributes[1]]);
        let len = usize::from(u16::from_be_bytes([attributes[2], attributes[3]]));
        let value = attributes.get(4..4 + len)?;
        if kind == USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next().filter(|ufrag| !ufrag.is_empty());
        }
        let padded = (len + 3) & !3; // attributes are padded to 4 bytes
        attributes = attributes.get(4 + padded..)?;
    }
    None
}

#[cfg(test)]
pub(crate) fn binding_request(username: &str) -> Vec<u8> {
    let mut attribute = USERNAME.to_be_bytes().to_vec();
    attribute.extend((username.len() as u16).to_be_bytes());
    attribute.extend(username.as_bytes());
    attribute.resize((attribute.len() + 3) & !3, 0);
    // A PRIORITY attribute first, so the walk has to skip one.
    let mut body = vec![0x00, 0x24, 0x00, 0x04, 0x6e, 0x7f, 0x1e, 0xff];
    body.extend(attribute);
    let mut message = BINDING_REQUEST.to_be_bytes().to_vec();
    message.extend((body.len() as u16).to_be_bytes());
    message.extend(MAGIC_COOKIE);
    message.extend([7u8; 12]); // transaction id
    message.extend(body);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_receivers_ufrag_from_a_binding_request() {
        assert_eq!(binding_request_ufrag(&binding_request("srvFrag:viewerFrag")), Some("srvFrag"));
        assert_eq!(binding_request_ufrag(&binding_request("odd:x")), Some("odd"), "unpadded lengths are walked");
    }

    #[test]
    fn ignores_everything_else() {
        let request = binding_request("srv:viewer");
        let mut response = request.clone();
        response[0] = 0x01; // 0x0101, a Binding success response
        assert_eq!(binding_request_ufrag(&response), None);
        assert_eq!(binding_request_ufrag(&binding_request(":viewer")), None, "empty ufrag");
        assert_eq!(binding_request_ufrag(&[0x80, 0x60, 0, 1]), None, "an RTP packet");
        assert_eq!(binding_request_ufrag(&[22, 0xfe, 0xfd, 0, 0]), None, "a DTLS record");
        for cut in 0..request.len() {
            assert_eq!(binding_request_ufrag(&request[..cut]), None, "truncated at {cut}");
        }
        let mut lying = request.clone();
        lying[3] = 0xff; // body length beyond the datagram
        assert_eq!(binding_request_ufrag(&lying), None);
    }
}
