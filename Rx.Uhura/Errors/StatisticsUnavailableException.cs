namespace Rx.Uhura;

/// <summary>
/// The server refused a statistics request (<see cref="UhuraClient.GetServerStatisticsAsync"/>): it does not set
/// <see cref="UhuraServerOptions.ExposeStatistics"/>. The connection is not affected.
/// </summary>
public sealed class StatisticsUnavailableException : UhuraException
{
    /// <summary>Creates the error with the server's reason.</summary>
    public StatisticsUnavailableException(string message) : base(message) { }
}
