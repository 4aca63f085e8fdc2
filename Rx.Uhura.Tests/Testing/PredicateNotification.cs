using System.Reactive;

namespace Microsoft.Reactive.Testing;

/// <summary>
/// An expected-value notification that matches actual notifications through a predicate rather than by value.
/// It only describes an expectation: it cannot be delivered to an observer and carries no value.
/// Equality is directional — compare it as the expected side (as <see cref="ReactiveAssert"/> does).
/// </summary>
internal abstract class PredicateNotification<T> : Notification<T>
{
    public override T Value => throw new NotSupportedException("A predicate notification has no value.");

    public override Exception? Exception => throw new NotSupportedException("A predicate notification has no exception.");

    public override bool Equals(Notification<T>? other)
    {
        if (ReferenceEquals(this, other))
        {
            return true;
        }

        return other is not null && other.Kind == Kind && Matches(other);
    }

    public override int GetHashCode() => Kind.GetHashCode();

    public override void Accept(IObserver<T> observer) => throw NotDeliverable();

    public override TResult Accept<TResult>(IObserver<T, TResult> observer) => throw NotDeliverable();

    public override void Accept(Action<T> onNext, Action<Exception> onError, Action onCompleted) => throw NotDeliverable();

    public override TResult Accept<TResult>(Func<T, TResult> onNext, Func<Exception, TResult> onError, Func<TResult> onCompleted) =>
        throw NotDeliverable();

    /// <summary>Whether the actual notification (already known to have the same kind) satisfies the predicate.</summary>
    protected abstract bool Matches(Notification<T> actual);

    private static NotSupportedException NotDeliverable() =>
        new("A predicate notification is an expectation only and cannot be delivered to an observer.");
}
