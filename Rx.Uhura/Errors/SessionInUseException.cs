namespace Rx.Uhura;

/// <summary>
/// The server turned this client's link away because the session it presented is in use by another client object
/// (one restored from the same saved session, say) whose link is live. The other client keeps its link; this one tries
/// again with its reconnect backoff and gets the session once that link is gone. Native wire only.
/// </summary>
public sealed class SessionInUseException : UhuraException
{
    /// <summary>Creates the error.</summary>
    public SessionInUseException(string message) : base(message)
    {
    }
}
