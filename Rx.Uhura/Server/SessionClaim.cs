namespace Rx.Uhura.Server;

/// <summary>
/// Which client a native Hello comes from, as far as the server can tell: the client object's instance id (sent to a
/// server that granted <c>Instances</c> before), and whether the client resumes the session's streams.
/// </summary>
/// <param name="Instance">The client object's id, or null when its Hello carried none.</param>
/// <param name="Resumes">The Hello asked to resume the streams (the client had them: an earlier link of its own was welcomed, or it proposed the id).</param>
internal readonly record struct SessionClaim(string? Instance, bool Resumes)
{
    /// <summary>
    /// True when the Hello cannot be the live link's own client reconnecting: the two name different instances, or the
    /// Hello names none and does not resume (a client object new to the session, restored from a saved one). Anything
    /// else may be that client's next link after its live one went half-dead, which supersedes it as before.
    /// </summary>
    public bool IsAnotherClientThan(Connection live)
        => Instance is not null && live.ClientInstance is { } liveInstance
            ? !string.Equals(Instance, liveInstance, StringComparison.Ordinal)
            : Instance is null && !Resumes;

    /// <summary>True when <paramref name="active"/>, a session's live link, is another client's and keeps the session from <paramref name="claimant"/>.</summary>
    public bool IsRefusedBy(Connection? active, Connection? claimant = null)
        => active is { HasEnded: false } live && !ReferenceEquals(live, claimant) && IsAnotherClientThan(live);
}
