namespace Rx.Uhura;

/// <summary>
/// The peer sent well-formed data that breaks the protocol: an unknown internal event, an internal event with the
/// wrong arguments, an application event before the handshake. The connection is closed.
/// </summary>
public sealed class ProtocolException : UhuraException
{
    /// <summary>Creates the error.</summary>
    public ProtocolException(string message, Exception? innerException = null) : base(message, innerException) { }
}
