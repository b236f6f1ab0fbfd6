"""An aiosmtpd handler for the email sender tests: a Maildir mailbox that also answers some
recipients the way real relays do (550 for an unknown user, 451 for a busy mailbox)."""

from aiosmtpd.handlers import Mailbox


class RecordingMailbox(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("unknown@"):
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if address.startswith("busy@"):
            return "451 4.2.1 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"
