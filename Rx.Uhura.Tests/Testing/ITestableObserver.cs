using System.Reactive;

namespace Microsoft.Reactive.Testing;

/// <summary>
/// An observer that records every notification it receives together with the virtual time of receipt.
/// </summary>
/// <typeparam name="T">Element type.</typeparam>
public interface ITestableObserver<T> : IObserver<T>
{
    /// <summary>Gets the recorded notifications.</summary>
    IList<Recorded<Notification<T>>> Messages { get; }
}
