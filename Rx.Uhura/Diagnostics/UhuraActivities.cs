using System.Diagnostics;

namespace Rx.Uhura.Diagnostics;

/// <summary>
/// The <c>Rx.Uhura</c> activity source: one activity per client connection attempt (<c>uhura.connect</c>) and per
/// server handshake (<c>uhura.handshake</c>); none per event. Activities are started only when someone listens, and are
/// never made ambient (<see cref="Activity.Current"/>): a link's read loop, and the handlers it calls, must not run
/// inside a handshake's activity.
/// </summary>
internal static class UhuraActivities
{
    public static readonly ActivitySource Source = new(UhuraDiagnostics.ActivitySourceName, UhuraDiagnostics.Version);

    public const string Connect = "uhura.connect";
    public const string Handshake = "uhura.handshake";

    /// <summary>Starts an activity without making it current; null when nobody listens.</summary>
    public static Activity? StartDetached(string name, ActivityKind kind)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        var previous = Activity.Current;
        var activity = Source.StartActivity(name, kind);
        Activity.Current = previous;
        return activity;
    }

    /// <summary>Ends an activity with an outcome; an error sets its status.</summary>
    public static void Stop(Activity? activity, string outcome, Exception? error = null)
    {
        if (activity is null)
        {
            return;
        }

        activity.SetTag("uhura.outcome", outcome);
        if (error is not null)
        {
            activity.SetStatus(ActivityStatusCode.Error, error.Message);
            activity.SetTag("error.type", error.GetType().FullName);
        }

        var previous = Activity.Current;
        activity.Stop(); // it sets Current to its parent: put back what this flow had
        Activity.Current = previous;
    }
}
