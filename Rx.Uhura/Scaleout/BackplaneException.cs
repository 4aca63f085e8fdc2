namespace Rx.Uhura.Scaleout;

/// <summary>
/// The backplane failed: a message could not be published (it is lost), its queue was full, or the backplane lost its
/// connection (it reconnects by itself). Reported on <see cref="UhuraServer.Errors"/>; the server goes on.
/// </summary>
public sealed class BackplaneException : UhuraException
{
    /// <summary>Creates the error.</summary>
    public BackplaneException(string message, Exception? innerException = null) : base(message, innerException) { }
}
