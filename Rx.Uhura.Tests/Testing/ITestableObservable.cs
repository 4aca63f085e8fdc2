using System.Reactive;

namespace Microsoft.Reactive.Testing;

/// <summary>
/// An observable sequence that records its subscriptions and replays a fixed list of timed notifications.
/// </summary>
/// <typeparam name="T">Element type.</typeparam>
public interface ITestableObservable<T> : IObservable<T>
{
    /// <summary>Gets the subscriptions made to this observable, in subscription order.</summary>
    IList<Subscription> Subscriptions { get; }

    /// <summary>Gets the timed notifications this observable emits.</summary>
    IList<Recorded<Notification<T>>> Messages { get; }
}
