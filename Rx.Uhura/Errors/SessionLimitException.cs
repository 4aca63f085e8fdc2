namespace Rx.Uhura;

/// <summary>
/// A session change would take the session past <see cref="ConnectionOptions.MaxSessionKeys"/> or
/// <see cref="ConnectionOptions.MaxSessionBytes"/>: refused by <c>UhuraSession.Set</c> before anything is applied or sent
/// (the peer, with the same limits, would refuse it and drop the link, and a resumed session would carry it again).
/// </summary>
public sealed class SessionLimitException : UhuraException
{
    /// <summary>Creates the error.</summary>
    public SessionLimitException(long limit, string message) : base(message)
    {
        Limit = limit;
    }

    /// <summary>The limit the change would exceed (a count of keys or of bytes, as the message says).</summary>
    public long Limit { get; }
}
